//! Tests of the controller, named by the property they prove.

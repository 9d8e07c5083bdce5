//! Property tests of the controller.

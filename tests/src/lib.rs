//! End-to-end tests of the workspace; the library holds the real-cluster fault harness
//! (`realfault`), shared by its tests and its workload binary.

pub mod realfault;

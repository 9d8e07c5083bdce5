//! The madsim scenarios live in `tests/` and build only under `RUSTFLAGS="--cfg madsim"`
//! (run them with `scripts/madsim`). This library is what they share with a normal
//! build: [`history`], which turns what the madsim clients observed and what the brokers
//! hold at the end into the fast simulator's history and runs its checkers, so the
//! checkers' verdicts on madsim runs can be tested (and shown failing) without madsim.

pub mod history;

//! Nothing here: the madsim scenarios live in `tests/` and build only under
//! `RUSTFLAGS="--cfg madsim"` (run them with `scripts/madsim`).

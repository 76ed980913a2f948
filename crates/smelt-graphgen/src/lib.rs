//! Random small graphs for differential testing and fuzzing (work in progress).

//! Integration tests of the `sleeve` binary, one test binary: hostile inputs, kills and
//! interrupts (issue 18). Each case asserts the exit status, that nothing panicked (exit
//! code 101) and that the error names the input.

mod hostile;
mod interrupted;

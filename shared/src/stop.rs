//! The one Ctrl-C stop token: long commands poll it, finish their step, save and return.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

static MESSAGE: Mutex<&'static str> = Mutex::new("interrupted: finishing and saving");

/// The process-wide stop flag, raised by the first Ctrl-C (which prints `message` to stderr);
/// a second Ctrl-C exits at once with status 130. The handler is installed on the first call;
/// later calls share the flag and replace the message. Where no handler can be installed,
/// a warning goes to stderr and the flag is only raised by the program itself.
pub fn ctrl_c(message: &'static str) -> Arc<AtomicBool> {
    if let Ok(mut m) = MESSAGE.lock() {
        *m = message;
    }
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let f = flag.clone();
        if let Err(e) = ctrlc::set_handler(move || {
            if f.swap(true, Ordering::SeqCst) {
                eprintln!("\ninterrupted twice: exiting without saving");
                std::process::exit(130);
            }
            let m = MESSAGE.lock().map(|m| *m).unwrap_or("interrupted");
            eprintln!("\n{m} (Ctrl-C again to quit now)");
        }) {
            eprintln!("warning: cannot install the Ctrl-C handler: {e}");
        }
        flag
    })
    .clone()
}

/// Whether `flag` has been raised.
pub fn raised(flag: &AtomicBool) -> bool {
    flag.load(Ordering::SeqCst)
}

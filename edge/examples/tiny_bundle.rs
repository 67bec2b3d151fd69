//! Writes a tiny test bundle and a few covers: `tiny_bundle BUNDLE_DIR [COVERS_DIR]`.
//! Used by `scripts/cross-pi.sh` and handy for trying `sleeve-edge` without real models.

use std::path::PathBuf;

use sleeve_edge::display::png::write_png;
use sleeve_edge::fixtures::{TinyBundle, tiny_cover, tiny_scene, write_tiny_bundle};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let bundle = PathBuf::from(args.next().unwrap_or_else(|| "target/tiny-bundle".into()));
    let m = write_tiny_bundle(&bundle, &TinyBundle::default())?;
    eprintln!("bundle '{}' written to {}", m.name, bundle.display());
    if let Some(covers) = args.next().map(PathBuf::from) {
        for class in 0..m.labels.len() {
            for pa in [false, true] {
                let name = format!(
                    "{}{}",
                    m.labels.name(class).unwrap_or("x"),
                    if pa { "_pa" } else { "" }
                );
                let cover = tiny_cover(class, 200, pa);
                write_png(&covers.join(format!("{name}.png")), &cover)?;
                let corners = [(170.0, 80.0), (470.0, 95.0), (460.0, 390.0), (160.0, 380.0)];
                write_png(
                    &covers.join(format!("scene_{name}.png")),
                    &tiny_scene(640, 480, Some(&cover), corners, class as u32),
                )?;
            }
        }
        eprintln!("covers and scenes written to {}", covers.display());
    }
    Ok(())
}

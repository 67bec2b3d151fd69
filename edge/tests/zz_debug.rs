use sleeve_edge::finder::{FinderConfig, find_sleeve};
use sleeve_edge::fixtures::{tiny_cover, tiny_scene};
use image::imageops;
use imageproc::contours::find_contours;
#[test]
fn dbg() {
  let cases: [[(f32, f32); 4]; 4] = [
    [(180.0, 90.0), (460.0, 100.0), (450.0, 380.0), (170.0, 370.0)],
    [(220.0, 60.0), (470.0, 120.0), (410.0, 370.0), (160.0, 310.0)],
    [(200.0, 80.0), (430.0, 80.0), (470.0, 330.0), (160.0, 330.0)],
    [(60.0, 40.0), (420.0, 50.0), (410.0, 420.0), (50.0, 410.0)],
  ];
  for (i, corners) in cases.iter().enumerate() {
    let cover = tiny_cover(i, 256, i % 2 == 0);
    let frame = tiny_scene(640, 480, Some(&cover), *corners, i as u32);
    frame.save("/tmp/dbg_scene.png").unwrap();
    let cfg = FinderConfig::default();
    let gray = imageops::grayscale(&frame);
    let small = imageops::resize(&gray, 400, 300, imageops::FilterType::Triangle);
    let blurred = imageproc::filter::gaussian_blur_f32(&small, cfg.blur_sigma);
    let edges = imageproc::edges::canny(&blurred, cfg.canny_low, cfg.canny_high);
    edges.save("/tmp/dbg_edges.png").unwrap();
    let closed = imageproc::morphology::dilate(&edges, imageproc::distance_transform::Norm::LInf, 1);
    let cs = find_contours::<i32>(&closed);
    let mut big: Vec<_> = cs.iter().map(|c| c.points.len()).collect();
    big.sort(); big.reverse();
    eprintln!("contours {} biggest {:?}", cs.len(), &big[..big.len().min(8)]);
    eprintln!("{i}: {:?}", find_sleeve(&frame, &cfg));
    frame.save(format!("/tmp/dbg_scene{i}.png")).unwrap();
    edges.save(format!("/tmp/dbg_edges{i}.png")).unwrap();
  }
}

fn main() {
    let cover = image::RgbImage::from_pixel(200, 200, image::Rgb([128, 128, 128]));
    let cfg = sleeve_synth::pa::PaConfig { size: 160, label_prob: 1.0, occlusion_prob: 0.0, hard_negative_prob: 0.0, hard_negative_with_label_prob: 0.0, ..Default::default() };
    let s = sleeve_synth::pa::composite(&cover, &cfg, 2);
    println!("{:?} {:?}", s.boxes, s.labels);
    image::imageops::resize(&s.image, 640, 640, image::imageops::FilterType::Nearest).save("/tmp/syn/dbg.png").unwrap();
}

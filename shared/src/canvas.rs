//! `embedded-graphics` draw targets over `image` buffers, shared by the kiosk screen and
//! the synthetic-data generators. Pixels outside the image are dropped.

use core::convert::Infallible;

use embedded_graphics::Pixel;
use embedded_graphics::draw_target::DrawTarget;
use embedded_graphics::geometry::{OriginDimensions, Size};
use embedded_graphics::pixelcolor::{Gray8, GrayColor, Rgb888, RgbColor};
use image::{GrayImage, Luma, Rgb, RgbImage, Rgba, RgbaImage};

/// An `embedded-graphics` draw target writing into an [`RgbImage`]; pixels outside the
/// image are dropped.
pub struct RgbCanvas<'a>(pub &'a mut RgbImage);

impl OriginDimensions for RgbCanvas<'_> {
    fn size(&self) -> Size {
        Size::new(self.0.width(), self.0.height())
    }
}

impl DrawTarget for RgbCanvas<'_> {
    type Color = Rgb888;
    type Error = Infallible;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Pixel<Self::Color>>,
    {
        let (w, h) = self.0.dimensions();
        for Pixel(p, c) in pixels {
            if p.x >= 0 && p.y >= 0 && (p.x as u32) < w && (p.y as u32) < h {
                self.0
                    .put_pixel(p.x as u32, p.y as u32, Rgb([c.r(), c.g(), c.b()]));
            }
        }
        Ok(())
    }
}

/// An `embedded-graphics` draw target writing opaque pixels into an [`RgbaImage`] (for
/// patches with transparent surroundings); pixels outside the image are dropped.
pub struct RgbaCanvas<'a>(pub &'a mut RgbaImage);

impl OriginDimensions for RgbaCanvas<'_> {
    fn size(&self) -> Size {
        Size::new(self.0.width(), self.0.height())
    }
}

impl DrawTarget for RgbaCanvas<'_> {
    type Color = Rgb888;
    type Error = Infallible;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Pixel<Self::Color>>,
    {
        let (w, h) = self.0.dimensions();
        for Pixel(p, c) in pixels {
            if p.x >= 0 && p.y >= 0 && (p.x as u32) < w && (p.y as u32) < h {
                self.0
                    .put_pixel(p.x as u32, p.y as u32, Rgba([c.r(), c.g(), c.b(), 255]));
            }
        }
        Ok(())
    }
}

/// An `embedded-graphics` draw target writing into a [`GrayImage`]; pixels outside the
/// image are dropped.
pub struct GrayCanvas<'a>(pub &'a mut GrayImage);

impl OriginDimensions for GrayCanvas<'_> {
    fn size(&self) -> Size {
        Size::new(self.0.width(), self.0.height())
    }
}

impl DrawTarget for GrayCanvas<'_> {
    type Color = Gray8;
    type Error = Infallible;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Pixel<Self::Color>>,
    {
        let (w, h) = self.0.dimensions();
        for Pixel(p, c) in pixels {
            if p.x >= 0 && p.y >= 0 && (p.x as u32) < w && (p.y as u32) < h {
                self.0.put_pixel(p.x as u32, p.y as u32, Luma([c.luma()]));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_graphics::prelude::*;
    use embedded_graphics::primitives::{PrimitiveStyle, Rectangle};

    #[test]
    fn canvases_draw_and_clip() {
        let mut img = RgbImage::new(8, 8);
        Rectangle::new(Point::new(-2, -2), Size::new(5, 5))
            .into_styled(PrimitiveStyle::with_fill(Rgb888::new(10, 20, 30)))
            .draw(&mut RgbCanvas(&mut img))
            .unwrap();
        assert_eq!(img.get_pixel(0, 0).0, [10, 20, 30]);
        assert_eq!(img.get_pixel(2, 2).0, [10, 20, 30]);
        assert_eq!(img.get_pixel(3, 3).0, [0, 0, 0]);

        let mut g = GrayImage::new(4, 4);
        Rectangle::new(Point::new(1, 1), Size::new(10, 10))
            .into_styled(PrimitiveStyle::with_fill(Gray8::new(200)))
            .draw(&mut GrayCanvas(&mut g))
            .unwrap();
        assert_eq!(g.get_pixel(0, 0).0[0], 0);
        assert_eq!(g.get_pixel(3, 3).0[0], 200);
    }
}

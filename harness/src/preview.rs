//! PNG previews of a CT slice with the lesion mask overlaid.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

/// Lower end of the display window (HU), shown black.
pub const WINDOW_LO: f32 = -1000.0;
/// Upper end of the display window (HU), shown white.
pub const WINDOW_HI: f32 = 400.0;

/// Errors writing a preview.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The slice buffers do not have `width * height` voxels.
    #[error("slice buffers hold {ct} CT and {label} label voxels, expected {expected}")]
    Size {
        /// Expected voxels.
        expected: usize,
        /// CT voxels given.
        ct: usize,
        /// Label voxels given.
        label: usize,
    },
    /// The file could not be written.
    #[error("i/o error")]
    Io(#[from] std::io::Error),
    /// The PNG encoder failed.
    #[error("png encoding")]
    Png(#[from] png::EncodingError),
}

/// Grey level of `hu` in the window [`WINDOW_LO`, `WINDOW_HI`].
pub fn grey(hu: f32) -> u8 {
    (((hu - WINDOW_LO) / (WINDOW_HI - WINDOW_LO)).clamp(0.0, 1.0) * 255.0).round() as u8
}

/// RGB pixels (row-major, `y` down) of a slice: CT in the display window, lesion voxels tinted
/// red (half grey, half pure red).
pub fn overlay_rgb(ct: &[i16], label: &[u8]) -> Vec<u8> {
    let mut rgb = Vec::with_capacity(ct.len() * 3);
    for (&hu, &l) in ct.iter().zip(label) {
        let g = grey(f32::from(hu));
        if l != 0 {
            rgb.extend([g / 2 + 128, g / 2, g / 2]);
        } else {
            rgb.extend([g, g, g]);
        }
    }
    rgb
}

/// Writes `overlay_rgb(ct, label)` as an 8-bit RGB PNG of `width × height`.
///
/// # Errors
/// [`Error::Size`] if the buffers are not `width * height` long; [`Error::Io`] or
/// [`Error::Png`] if writing fails.
pub fn write_overlay_png(
    path: &Path,
    width: usize,
    height: usize,
    ct: &[i16],
    label: &[u8],
) -> Result<(), Error> {
    let expected = width * height;
    if ct.len() != expected || label.len() != expected {
        return Err(Error::Size {
            expected,
            ct: ct.len(),
            label: label.len(),
        });
    }
    let (w, h) = match (u32::try_from(width), u32::try_from(height)) {
        (Ok(w), Ok(h)) => (w, h),
        _ => {
            return Err(Error::Size {
                expected,
                ct: ct.len(),
                label: label.len(),
            });
        }
    };
    let mut enc = png::Encoder::new(BufWriter::new(File::create(path)?), w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header()?;
    writer.write_image_data(&overlay_rgb(ct, label))?;
    writer.finish()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_maps_ends_to_black_and_white() {
        assert_eq!(grey(-1000.0), 0);
        assert_eq!(grey(-2000.0), 0);
        assert_eq!(grey(400.0), 255);
        assert_eq!(grey(3000.0), 255);
        assert_eq!(grey(-300.0), 128);
    }

    #[test]
    fn lesions_are_tinted_red() {
        let rgb = overlay_rgb(&[-300, -300], &[0, 1]);
        assert_eq!(&rgb[..3], &[128, 128, 128]);
        assert_eq!(&rgb[3..], &[192, 64, 64]);
    }
}

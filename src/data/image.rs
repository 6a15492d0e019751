//! The frame images of video folders: PNG and JPEG decoded to 8-bit RGB or grey,
//! resized with a triangle (bilinear) filter, and PNG encoded.
//!
//! Built on the `png` and `zune-jpeg` decoders directly (the formats a frame folder holds),
//! not on the `image` crate, whose colour-management dependencies took 136 s of CPU to
//! compile (`docs/architecture.md`, "Build time").
//!
//! | step | what it does |
//! |---|---|
//! | [`decode`] | PNG (any colour type and bit depth: palettes expanded, 16 bits rounded to 8, alpha dropped) or JPEG (baseline and progressive, converted to RGB) by the file's signature; the decoded size is checked against [`crate::limits`] before allocating |
//! | [`dimensions`] | width and height from the header, without decoding the pixels |
//! | [`Image::to_rgb`], [`Image::to_grey`] | channel conversion; grey is Rec. 709 luma `0.2126 R + 0.7152 G + 0.0722 B`, rounded down |
//! | [`Image::resize`] | separable triangle filter whose support widens with the downscaling factor (every source pixel contributes, as area averaging) |
//! | [`encode_png`] | an 8-bit grey or RGB PNG |
//!
//! # Example
//! ```
//! use tnet::data::image::{Image, decode, encode_png};
//! let rgb: Vec<u8> = (0..4 * 2).flat_map(|i| [i as u8 * 10, 50, 200]).collect();
//! let png = encode_png(4, 2, 3, &rgb).unwrap();
//! let img = decode(&png).unwrap();
//! assert_eq!((img.width(), img.height(), img.channels()), (4, 2, 3));
//! assert_eq!(img.pixels(), &rgb[..]);
//! let small = img.resize(2, 1);
//! assert_eq!(small.pixels().len(), 2 * 3);
//! ```

use crate::{Error, Result};

/// An 8-bit image, row-major `(height, width, channels)` with 1 (grey) or 3 (RGB)
/// channels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    width: usize,
    height: usize,
    channels: usize,
    pixels: Vec<u8>,
}

impl Image {
    /// An image from its pixels, checked.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for a zero size, a channel count other than 1 or 3, or
    /// a pixel buffer of the wrong length.
    pub fn try_new(width: usize, height: usize, channels: usize, pixels: Vec<u8>) -> Result<Self> {
        if width == 0 || height == 0 || !(channels == 1 || channels == 3) {
            return Err(Error::param(
                "image",
                format!("{width}x{height} with {channels} channels (1 or 3, non-empty) expected"),
            ));
        }
        let len = width
            .checked_mul(height)
            .and_then(|n| n.checked_mul(channels));
        if len != Some(pixels.len()) {
            return Err(Error::param(
                "image",
                format!(
                    "{} bytes for a {width}x{height}x{channels} image",
                    pixels.len()
                ),
            ));
        }
        Ok(Self {
            width,
            height,
            channels,
            pixels,
        })
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// 1 (grey) or 3 (RGB).
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// The pixels, row-major `(height, width, channels)`.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// The pixel buffer.
    pub fn into_pixels(self) -> Vec<u8> {
        self.pixels
    }

    /// RGB (grey replicated into the three channels).
    pub fn to_rgb(self) -> Image {
        if self.channels == 3 {
            return self;
        }
        let pixels = self.pixels.iter().flat_map(|&v| [v, v, v]).collect();
        Image {
            channels: 3,
            pixels,
            ..self
        }
    }

    /// Grey: Rec. 709 luma `0.2126 R + 0.7152 G + 0.0722 B`, rounded down (as the `image`
    /// crate, which decoded frames before, did).
    pub fn to_grey(self) -> Image {
        if self.channels == 1 {
            return self;
        }
        let pixels = self
            .pixels
            .chunks_exact(3)
            .map(|p| {
                let y = 2126 * u32::from(p[0]) + 7152 * u32::from(p[1]) + 722 * u32::from(p[2]);
                (y / 10000) as u8
            })
            .collect();
        Image {
            channels: 1,
            pixels,
            ..self
        }
    }

    /// The image resampled to `width x height` (both at least 1) by a separable triangle
    /// filter: output pixel `x` is centred at `(x + 1/2) s` in the source (`s` the
    /// source-to-target ratio), and source pixels within `max(s, 1)` of that centre
    /// contribute with weights falling linearly to zero. Returns a copy when the size is
    /// unchanged. Cost `O(width · h_src + width · height)` per channel and pass.
    ///
    /// # Panics
    /// If `width` or `height` is zero (the callers' sizes are validated).
    #[track_caller]
    pub fn resize(&self, width: usize, height: usize) -> Image {
        assert!(width > 0 && height > 0, "Image::resize to an empty size");
        if (width, height) == (self.width, self.height) {
            return self.clone();
        }
        let c = self.channels;
        // Horizontal pass: (h_src, width, c).
        let wx = weights(self.width, width);
        let mut tmp = vec![0f32; self.height * width * c];
        for y in 0..self.height {
            let row = &self.pixels[y * self.width * c..(y + 1) * self.width * c];
            for (x, (start, ws)) in wx.iter().enumerate() {
                for ch in 0..c {
                    let v: f32 = ws
                        .iter()
                        .enumerate()
                        .map(|(k, w)| w * f32::from(row[(start + k) * c + ch]))
                        .sum();
                    tmp[(y * width + x) * c + ch] = v;
                }
            }
        }
        // Vertical pass.
        let wy = weights(self.height, height);
        let mut pixels = vec![0u8; height * width * c];
        for (y, (start, ws)) in wy.iter().enumerate() {
            for x in 0..width {
                for ch in 0..c {
                    let v: f32 = ws
                        .iter()
                        .enumerate()
                        .map(|(k, w)| w * tmp[((start + k) * width + x) * c + ch])
                        .sum();
                    pixels[(y * width + x) * c + ch] = v.round().clamp(0.0, 255.0) as u8;
                }
            }
        }
        Image {
            width,
            height,
            channels: c,
            pixels,
        }
    }
}

/// Per target pixel: the first source pixel and the normalised weights from there on.
fn weights(src: usize, dst: usize) -> Vec<(usize, Vec<f32>)> {
    let ratio = src as f32 / dst as f32;
    let support = ratio.max(1.0);
    (0..dst)
        .map(|x| {
            let centre = (x as f32 + 0.5) * ratio;
            let lo = ((centre - support).floor().max(0.0)) as usize;
            let hi = ((centre + support).ceil() as usize).min(src);
            let mut ws: Vec<f32> = (lo..hi)
                .map(|i| (1.0 - ((i as f32 + 0.5 - centre) / support).abs()).max(0.0))
                .collect();
            let sum: f32 = ws.iter().sum();
            if sum > 0.0 {
                ws.iter_mut().for_each(|w| *w /= sum);
            } else {
                // Unreachable for src, dst >= 1 (the nearest pixel always has weight);
                // fall back to nearest.
                let nearest = (centre as usize).min(src - 1);
                return (nearest, vec![1.0]);
            }
            (lo, ws)
        })
        .collect()
}

/// The formats [`decode`] reads, told apart by their signatures.
enum Kind {
    Png,
    Jpeg,
}

fn kind(bytes: &[u8]) -> Result<Kind> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Ok(Kind::Png)
    } else if bytes.starts_with(&[0xff, 0xd8]) {
        Ok(Kind::Jpeg)
    } else {
        Err(Error::corrupt(
            "not a PNG or JPEG image (unknown signature)".to_string(),
        ))
    }
}

fn png_error(e: png::DecodingError) -> Error {
    Error::corrupt(format!("PNG: {e}"))
}

fn jpeg_error(e: zune_jpeg::errors::DecodeErrors) -> Error {
    Error::corrupt(format!("JPEG: {e:?}"))
}

/// Decodes a PNG or JPEG file's bytes to 8-bit grey or RGB (alpha dropped; 16-bit samples
/// rounded to 8 bits, `v·255/65535`).
///
/// # Errors
/// [`Error::Corrupt`] for another format or a truncated or malformed file;
/// [`Error::TooLarge`] when the decoded pixels declared by the header exceed the memory
/// limit ([`crate::limits`]), checked before anything is allocated.
pub fn decode(bytes: &[u8]) -> Result<Image> {
    match kind(bytes)? {
        Kind::Png => {
            let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
            decoder.set_transformations(png::Transformations::EXPAND);
            let mut reader = decoder.read_info().map_err(png_error)?;
            let size = reader
                .output_buffer_size()
                .ok_or_else(|| Error::corrupt("PNG: image too large".to_string()))?;
            crate::limits::check_bytes("a decoded PNG frame", size as u128)?;
            let mut buf = vec![0u8; size];
            let info = reader.next_frame(&mut buf).map_err(png_error)?;
            buf.truncate(info.buffer_size());
            if info.bit_depth == png::BitDepth::Sixteen {
                // Big-endian samples, rounded to 8 bits.
                buf = buf
                    .chunks_exact(2)
                    .map(|b| {
                        ((u32::from(u16::from_be_bytes([b[0], b[1]])) * 255 + 32767) / 65535) as u8
                    })
                    .collect();
            }
            let (w, h) = (info.width as usize, info.height as usize);
            let (c, keep) = match info.color_type {
                png::ColorType::Grayscale => (1, 1),
                png::ColorType::GrayscaleAlpha => (2, 1),
                png::ColorType::Rgb => (3, 3),
                png::ColorType::Rgba => (4, 3),
                png::ColorType::Indexed => {
                    return Err(Error::corrupt("PNG: palette not expanded".to_string()));
                }
            };
            let pixels = if c == keep {
                buf
            } else {
                buf.chunks_exact(c)
                    .flat_map(|p| p[..keep].to_vec())
                    .collect()
            };
            Image::try_new(w, h, keep, pixels).map_err(|e| Error::corrupt(format!("PNG: {e}")))
        }
        Kind::Jpeg => {
            use zune_jpeg::zune_core::bytestream::ZCursor;
            use zune_jpeg::zune_core::colorspace::ColorSpace;
            use zune_jpeg::zune_core::options::DecoderOptions;
            let options = DecoderOptions::default().jpeg_set_out_colorspace(ColorSpace::RGB);
            let mut decoder =
                zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), options);
            decoder.decode_headers().map_err(jpeg_error)?;
            let header = decoder
                .info()
                .ok_or_else(|| Error::corrupt("JPEG: no header".to_string()))?;
            crate::limits::check_bytes(
                "a decoded JPEG frame",
                u128::from(header.width) * u128::from(header.height) * 3,
            )?;
            let pixels = decoder.decode().map_err(jpeg_error)?;
            let info = decoder
                .info()
                .ok_or_else(|| Error::corrupt("JPEG: no header".to_string()))?;
            Image::try_new(usize::from(info.width), usize::from(info.height), 3, pixels)
                .map_err(|e| Error::corrupt(format!("JPEG: {e}")))
        }
    }
}

/// Width and height from a PNG or JPEG header, without decoding the pixels.
///
/// # Errors
/// [`Error::Corrupt`] for another format or a malformed header.
pub fn dimensions(bytes: &[u8]) -> Result<(usize, usize)> {
    match kind(bytes)? {
        Kind::Png => {
            let reader = png::Decoder::new(std::io::Cursor::new(bytes))
                .read_info()
                .map_err(png_error)?;
            let (w, h) = reader.info().size();
            Ok((w as usize, h as usize))
        }
        Kind::Jpeg => {
            use zune_jpeg::zune_core::bytestream::ZCursor;
            let mut decoder = zune_jpeg::JpegDecoder::new(ZCursor::new(bytes));
            decoder.decode_headers().map_err(jpeg_error)?;
            let info = decoder
                .info()
                .ok_or_else(|| Error::corrupt("JPEG: no header".to_string()))?;
            Ok((usize::from(info.width), usize::from(info.height)))
        }
    }
}

/// An 8-bit PNG of `channels` (1 grey, 3 RGB) from row-major pixels.
///
/// # Errors
/// [`Error::InvalidParameter`] for pixels that do not fit the size (see
/// [`Image::try_new`]), or a side above `u32::MAX`.
pub fn encode_png(width: usize, height: usize, channels: usize, pixels: &[u8]) -> Result<Vec<u8>> {
    let img = Image::try_new(width, height, channels, pixels.to_vec())?;
    let side = |n: usize| {
        u32::try_from(n).map_err(|_| Error::param("image", format!("side {n} too large")))
    };
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, side(img.width)?, side(img.height)?);
    encoder.set_color(if channels == 1 {
        png::ColorType::Grayscale
    } else {
        png::ColorType::Rgb
    });
    encoder.set_depth(png::BitDepth::Eight);
    let encode = |e: png::EncodingError| Error::param("image", format!("PNG encoding: {e}"));
    let mut writer = encoder.write_header().map_err(encode)?;
    writer.write_image_data(&img.pixels).map_err(encode)?;
    writer.finish().map_err(encode)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A flat image stays flat under any resize, a gradient stays monotone, and grey and
    /// RGB round-trip through PNG exactly.
    #[test]
    fn resize_and_round_trip() {
        let flat = Image::try_new(7, 5, 3, [10u8, 120, 240].repeat(35)).unwrap();
        for (w, h) in [(3, 2), (7, 5), (14, 11), (1, 1)] {
            let r = flat.resize(w, h);
            assert!(r.pixels().chunks(3).all(|p| p == [10, 120, 240]), "{w}x{h}");
        }
        let ramp: Vec<u8> = (0..16).map(|i| (i * 16) as u8).collect();
        let g = Image::try_new(16, 1, 1, ramp).unwrap().resize(5, 1);
        assert!(
            g.pixels().windows(2).all(|p| p[0] < p[1]),
            "{:?}",
            g.pixels()
        );
        for c in [1, 3] {
            let px: Vec<u8> = (0..6 * 4 * c).map(|i| (i * 7 % 256) as u8).collect();
            let back = decode(&encode_png(6, 4, c, &px).unwrap()).unwrap();
            assert_eq!((back.channels(), back.pixels()), (c, &px[..]));
        }
        assert_eq!(
            dimensions(&encode_png(6, 4, 1, &[0; 24]).unwrap()).unwrap(),
            (6, 4)
        );
    }

    /// Anything that is not a whole PNG or JPEG is an error, never a panic.
    #[test]
    fn hostile_bytes_are_errors() {
        let png = encode_png(3, 3, 3, &[7; 27]).unwrap();
        for bad in [
            &b""[..],
            b"GIF89a",
            &png[..20],
            &png[..png.len() / 2],
            &[0xff, 0xd8, 0, 1],
        ] {
            assert!(decode(bad).is_err());
        }
        assert!(Image::try_new(2, 2, 2, vec![0; 8]).is_err());
        assert!(Image::try_new(2, 2, 3, vec![0; 11]).is_err());
    }
}

//! Files the scripted clients attach: random bytes of varying size that no sniffer takes for a
//! known type, and real PNG images (random pixels, no metadata chunks, so the server serves
//! them byte for byte after decoding them and making a thumbnail).

use rand::rngs::StdRng;
use rand::{Rng, RngCore};

/// A file to attach: its name, bytes and whether it is an image.
#[derive(Debug, Clone)]
pub struct File {
    pub name: String,
    pub bytes: Vec<u8>,
    pub image: bool,
}

/// A random file: one in three a PNG of 16–300 px a side, otherwise bytes, mostly small (up
/// to 64 KiB), some up to 1 MiB, a few up to 3 MiB.
pub fn random(rng: &mut StdRng, stem: &str) -> File {
    if rng.random_range(0..3) == 0 {
        let (w, h) = (rng.random_range(16..=300), rng.random_range(16..=300));
        return File {
            name: format!("{stem}.png"),
            bytes: png(w, h, rng),
            image: true,
        };
    }
    let len = match rng.random_range(0..20) {
        0 => rng.random_range(1 << 20..3 << 20),
        1..=5 => rng.random_range(64 << 10..1 << 20),
        _ => rng.random_range(1..64 << 10),
    };
    File {
        name: format!("{stem}.bin"),
        bytes: bytes(len, rng),
        image: false,
    }
}

/// `len` bytes (at least the header): a text header, so the type sniffed is never an image or
/// an archive by chance, then random bytes.
pub fn bytes(len: usize, rng: &mut StdRng) -> Vec<u8> {
    let mut out = b"fault-run file\n".to_vec();
    let head = out.len();
    out.resize(head.max(len), 0);
    rng.fill_bytes(&mut out[head..]);
    out
}

/// A `w`×`h` RGB PNG of random pixels: IHDR, one IDAT of stored (uncompressed) deflate blocks,
/// IEND. No metadata chunk, so the server's stripping leaves it as it is.
pub fn png(w: u32, h: u32, rng: &mut StdRng) -> Vec<u8> {
    let row = 1 + 3 * w as usize;
    let mut raw = vec![0u8; row * h as usize];
    for r in raw.chunks_mut(row) {
        r[0] = 0; // filter: none
        rng.fill_bytes(&mut r[1..]);
    }
    let mut zlib = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65535).collect();
    for (i, block) in blocks.iter().enumerate() {
        zlib.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        zlib.extend_from_slice(&len.to_le_bytes());
        zlib.extend_from_slice(&(!len).to_le_bytes());
        zlib.extend_from_slice(block);
    }
    zlib.extend_from_slice(&adler32(&raw).to_be_bytes());
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [
        (b"IHDR", &ihdr[..]),
        (b"IDAT", &zlib[..]),
        (b"IEND", &[][..]),
    ] {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let crc = crc32(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }
    out
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(5552) {
        for &x in chunk {
            a += u32::from(x);
            b += a;
        }
        a %= 65521;
        b %= 65521;
    }
    (b << 16) | a
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &x in data {
        crc ^= u32::from(x);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A short fingerprint of a file's bytes for reports (FNV-1a).
pub fn fingerprint(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn checksums_match_known_values() {
        assert_eq!(crc32(b"IEND"), 0xae42_6082);
        assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
    }

    #[test]
    fn pngs_are_well_formed() {
        let mut rng = StdRng::seed_from_u64(1);
        let png = png(300, 300, &mut rng);
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR"));
        assert!(png.ends_with(&[0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xae, 0x42, 0x60, 0x82]));
        // Rows of 901 bytes, 300 of them, in blocks of at most 65535.
        assert!(png.len() > 300 * 901);
    }
}

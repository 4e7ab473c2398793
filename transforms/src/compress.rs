//! `Compress` and `Decompress`: streaming zstd and gzip, emitting output in
//! bounded pieces, with a bound on what one input chunk may decompress to.

use std::fmt;
use std::io::{self, Write};

use bytes::Bytes;
use weir::{BoxError, Transform};

use crate::error::TransformError;

/// Default size of the output pieces: 64 KiB.
pub const DEFAULT_PIECE_SIZE: usize = 64 * 1024;
/// Default limit on what one input chunk may decompress to: 64 MiB.
pub const DEFAULT_MAX_OUTPUT_PER_CHUNK: u64 = 64 * 1024 * 1024;
/// Default largest zstd window accepted when decompressing, as a power of
/// two: 2^27 bytes (128 MiB), zstd's own default limit.
pub const DEFAULT_WINDOW_LOG_MAX: u32 = 27;

/// A compression format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Codec {
    /// Zstandard, through the `zstd` crate (libzstd).
    Zstd,
    /// gzip (RFC 1952), through `flate2` with its pure-Rust backend;
    /// concatenated members are decoded one after another, as `gzip -d`
    /// does.
    Gzip,
}

impl Codec {
    /// `"zstd"` or `"gzip"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Zstd => "zstd",
            Self::Gzip => "gzip",
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a codec writes its output: fixed-size pieces, and a count of the
/// bytes written since the last [`Pieces::start_chunk`], refused past the
/// limit.
#[derive(Debug)]
struct Pieces {
    current: Vec<u8>,
    piece_size: usize,
    ready: Vec<Bytes>,
    written: u64,
    limit: u64,
    exceeded: bool,
}

impl Pieces {
    fn new(piece_size: usize, limit: u64) -> Self {
        Self {
            current: Vec::new(),
            piece_size,
            ready: Vec::new(),
            written: 0,
            limit,
            exceeded: false,
        }
    }

    fn start_chunk(&mut self) {
        self.written = 0;
    }

    /// Moves the complete pieces to `out`, and the partial one too when
    /// `all`.
    fn drain_into(&mut self, out: &mut Vec<Bytes>, all: bool) {
        out.append(&mut self.ready);
        if all && !self.current.is_empty() {
            out.push(Bytes::from(std::mem::take(&mut self.current)));
        }
    }
}

impl Write for Pieces {
    fn write(&mut self, mut buf: &[u8]) -> io::Result<usize> {
        let len = buf.len();
        if self.written.saturating_add(len as u64) > self.limit {
            self.exceeded = true;
            return Err(io::Error::other("output limit exceeded"));
        }
        self.written += len as u64;
        while !buf.is_empty() {
            if self.current.capacity() == 0 {
                self.current.reserve_exact(self.piece_size);
            }
            let take = (self.piece_size - self.current.len()).min(buf.len());
            self.current.extend_from_slice(&buf[..take]);
            buf = &buf[take..];
            if self.current.len() == self.piece_size {
                self.ready.push(Bytes::from(std::mem::take(&mut self.current)));
            }
        }
        Ok(len)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

enum Encoder {
    Zstd(zstd::stream::write::Encoder<'static, Pieces>),
    Gzip(flate2::write::GzEncoder<Pieces>),
}

impl Encoder {
    fn pieces(&mut self) -> &mut Pieces {
        match self {
            Self::Zstd(e) => e.get_mut(),
            Self::Gzip(e) => e.get_mut(),
        }
    }
}

/// Compresses the stream with zstd or gzip, emitting the compressed bytes
/// in pieces of at most [`piece_size`](Compress::piece_size) (64 KiB by
/// default).
///
/// The output is one zstd frame (with its content checksum, as the `zstd`
/// tool writes it) or one gzip member (with its CRC-32). Compression burns CPU,
/// so the stage runs off the runtime's workers unless told otherwise
/// ([`offload`](Compress::offload)). Memory: the codec's own state (a few
/// MiB for zstd at low levels) plus one partial piece.
pub struct Compress {
    codec: Codec,
    level: i32,
    piece_size: usize,
    offload: bool,
    encoder: Option<Encoder>,
}

impl fmt::Debug for Compress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Compress")
            .field("codec", &self.codec)
            .field("level", &self.level)
            .field("piece_size", &self.piece_size)
            .field("offload", &self.offload)
            .finish_non_exhaustive()
    }
}

impl Compress {
    /// Compresses with `codec` at its usual default level (zstd 3, gzip 6).
    pub fn new(codec: Codec) -> Self {
        let level = match codec {
            Codec::Zstd => zstd::DEFAULT_COMPRESSION_LEVEL,
            Codec::Gzip => 6,
        };
        Self {
            codec,
            level,
            piece_size: DEFAULT_PIECE_SIZE,
            offload: true,
            encoder: None,
        }
    }

    /// zstd at `level`, clamped to the levels libzstd supports (1 to 22,
    /// and the negative fast levels).
    pub fn zstd(level: i32) -> Self {
        let range = zstd::compression_level_range();
        Self {
            level: level.clamp(*range.start(), *range.end()),
            ..Self::new(Codec::Zstd)
        }
    }

    /// gzip at `level`, clamped to 0 (stored) ..= 9 (smallest).
    pub fn gzip(level: u32) -> Self {
        Self {
            level: i32::try_from(level.min(9)).unwrap_or(9),
            ..Self::new(Codec::Gzip)
        }
    }

    /// Largest output chunk, in bytes (at least 1).
    #[must_use]
    pub fn piece_size(mut self, bytes: usize) -> Self {
        self.piece_size = bytes.max(1);
        self
    }

    /// Whether the stage runs off the runtime's workers (the default) or
    /// inline.
    #[must_use]
    pub fn offload(mut self, offload: bool) -> Self {
        self.offload = offload;
        self
    }

    fn error(&self, source: io::Error) -> BoxError {
        Box::new(TransformError::Codec {
            codec: self.codec.as_str(),
            operation: "compression",
            source,
        })
    }

    fn encoder(&mut self) -> Result<&mut Encoder, BoxError> {
        if self.encoder.is_none() {
            let pieces = Pieces::new(self.piece_size, u64::MAX);
            let encoder = match self.codec {
                Codec::Zstd => {
                    let mut encoder =
                        zstd::stream::write::Encoder::new(pieces, self.level).map_err(|e| self.error(e))?;
                    // As the zstd tool does: corruption is then caught on decompression.
                    encoder.include_checksum(true).map_err(|e| self.error(e))?;
                    Encoder::Zstd(encoder)
                }
                Codec::Gzip => {
                    let level = flate2::Compression::new(u32::try_from(self.level).unwrap_or(6));
                    Encoder::Gzip(flate2::write::GzEncoder::new(pieces, level))
                }
            };
            self.encoder = Some(encoder);
        }
        self.encoder.as_mut().ok_or_else(|| "compressor unavailable".into())
    }
}

impl Transform for Compress {
    fn name(&self) -> &str {
        match self.codec {
            Codec::Zstd => "zstd-compress",
            Codec::Gzip => "gzip-compress",
        }
    }

    fn transform(&mut self, chunk: Bytes, out: &mut Vec<Bytes>) -> Result<(), BoxError> {
        let encoder = self.encoder()?;
        let written = match encoder {
            Encoder::Zstd(e) => e.write_all(&chunk),
            Encoder::Gzip(e) => e.write_all(&chunk),
        };
        encoder.pieces().drain_into(out, false);
        written.map_err(|e| self.error(e))
    }

    fn finish(&mut self, out: &mut Vec<Bytes>) -> Result<(), BoxError> {
        let encoder = self.encoder()?;
        let finished = match encoder {
            Encoder::Zstd(e) => e.do_finish(),
            Encoder::Gzip(e) => e.try_finish(),
        };
        encoder.pieces().drain_into(out, true);
        finished.map_err(|e| self.error(e))
    }

    fn cpu_heavy(&self) -> bool {
        self.offload
    }
}

enum Decoder {
    Zstd(zstd::stream::write::Decoder<'static, Pieces>),
    Gzip(flate2::write::MultiGzDecoder<Pieces>),
}

impl Decoder {
    fn pieces(&mut self) -> &mut Pieces {
        match self {
            Self::Zstd(d) => d.get_mut(),
            Self::Gzip(d) => d.get_mut(),
        }
    }
}

/// Decompresses a zstd or gzip stream, emitting the output in pieces of at
/// most [`piece_size`](Decompress::piece_size) (64 KiB by default).
///
/// Concatenated zstd frames and gzip members are decoded one after
/// another. Truncated or corrupt input, trailing garbage, and an empty input
/// (no frame at all) fail the ingestion with [`TransformError::Codec`].
///
/// # Memory
///
/// A small compressed chunk may expand enormously (a decompression bomb).
/// The output of one input chunk is capped by
/// [`max_output_per_chunk`](Decompress::max_output_per_chunk) (64 MiB by
/// default): past it the ingestion fails with
/// [`TransformError::OutputLimit`] instead of growing memory. zstd frames
/// asking for a window larger than
/// [`window_log_max`](Decompress::window_log_max) are refused. Memory is
/// therefore bounded by the codec's window plus the cap.
///
/// The engine hands a stage's whole output for one input chunk on at once,
/// so the cap is a limit, not a throttle: keep input chunks small when
/// the data is very compressible.
pub struct Decompress {
    codec: Codec,
    piece_size: usize,
    max_output_per_chunk: u64,
    window_log_max: u32,
    offload: bool,
    chunks: u64,
    decoder: Option<Decoder>,
}

impl fmt::Debug for Decompress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decompress")
            .field("codec", &self.codec)
            .field("piece_size", &self.piece_size)
            .field("max_output_per_chunk", &self.max_output_per_chunk)
            .field("window_log_max", &self.window_log_max)
            .field("offload", &self.offload)
            .finish_non_exhaustive()
    }
}

impl Decompress {
    /// Decompresses `codec`, with the default limits.
    pub fn new(codec: Codec) -> Self {
        Self {
            codec,
            piece_size: DEFAULT_PIECE_SIZE,
            max_output_per_chunk: DEFAULT_MAX_OUTPUT_PER_CHUNK,
            window_log_max: DEFAULT_WINDOW_LOG_MAX,
            offload: true,
            chunks: 0,
            decoder: None,
        }
    }

    /// `Decompress::new(Codec::Zstd)`.
    pub fn zstd() -> Self {
        Self::new(Codec::Zstd)
    }

    /// `Decompress::new(Codec::Gzip)`.
    pub fn gzip() -> Self {
        Self::new(Codec::Gzip)
    }

    /// Largest output chunk, in bytes (at least 1).
    #[must_use]
    pub fn piece_size(mut self, bytes: usize) -> Self {
        self.piece_size = bytes.max(1);
        self
    }

    /// Most bytes one input chunk may decompress to (at least 1).
    #[must_use]
    pub fn max_output_per_chunk(mut self, bytes: u64) -> Self {
        self.max_output_per_chunk = bytes.max(1);
        self
    }

    /// Largest zstd window accepted, as a power of two (libzstd accepts 10
    /// to 31 on 64-bit targets); ignored for gzip, whose window is 32 KiB.
    #[must_use]
    pub fn window_log_max(mut self, log: u32) -> Self {
        self.window_log_max = log;
        self
    }

    /// Whether the stage runs off the runtime's workers (the default) or
    /// inline.
    #[must_use]
    pub fn offload(mut self, offload: bool) -> Self {
        self.offload = offload;
        self
    }

    fn codec_error(&self, source: io::Error) -> BoxError {
        Box::new(TransformError::Codec {
            codec: self.codec.as_str(),
            operation: "decompression",
            source,
        })
    }

    fn decoder(&mut self) -> Result<&mut Decoder, BoxError> {
        if self.decoder.is_none() {
            let pieces = Pieces::new(self.piece_size, self.max_output_per_chunk);
            let decoder = match self.codec {
                Codec::Zstd => {
                    let mut raw = zstd::stream::raw::Decoder::new().map_err(|e| self.codec_error(e))?;
                    raw.set_parameter(zstd::stream::raw::DParameter::WindowLogMax(self.window_log_max))
                        .map_err(|e| self.codec_error(e))?;
                    Decoder::Zstd(zstd::stream::write::Decoder::with_decoder(pieces, raw))
                }
                Codec::Gzip => Decoder::Gzip(flate2::write::MultiGzDecoder::new(pieces)),
            };
            self.decoder = Some(decoder);
        }
        self.decoder.as_mut().ok_or_else(|| "decompressor unavailable".into())
    }

    /// Maps a codec failure, telling the output limit apart.
    fn failed(&self, exceeded: bool, source: io::Error) -> BoxError {
        if exceeded {
            Box::new(TransformError::OutputLimit {
                codec: self.codec.as_str(),
                chunk: self.chunks,
                limit: self.max_output_per_chunk,
            })
        } else {
            self.codec_error(source)
        }
    }
}

impl Transform for Decompress {
    fn name(&self) -> &str {
        match self.codec {
            Codec::Zstd => "zstd-decompress",
            Codec::Gzip => "gzip-decompress",
        }
    }

    fn transform(&mut self, chunk: Bytes, out: &mut Vec<Bytes>) -> Result<(), BoxError> {
        let decoder = self.decoder()?;
        decoder.pieces().start_chunk();
        // Flushing hands on everything this chunk decodes to, so that the
        // output limit counts the right chunk.
        let written = match decoder {
            Decoder::Zstd(d) => d.write_all(&chunk).and_then(|()| d.flush()),
            Decoder::Gzip(d) => d.write_all(&chunk).and_then(|()| d.flush()),
        };
        let pieces = decoder.pieces();
        let exceeded = pieces.exceeded;
        pieces.drain_into(out, false);
        let result = written.map_err(|e| self.failed(exceeded, e));
        self.chunks += 1;
        result
    }

    fn finish(&mut self, out: &mut Vec<Bytes>) -> Result<(), BoxError> {
        let decoder = self.decoder()?;
        decoder.pieces().start_chunk();
        let finished = match decoder {
            Decoder::Zstd(d) => d.do_finish(),
            Decoder::Gzip(d) => d.try_finish(),
        };
        let pieces = decoder.pieces();
        let exceeded = pieces.exceeded;
        pieces.drain_into(out, true);
        finished.map_err(|e| self.failed(exceeded, e))
    }

    fn cpu_heavy(&self) -> bool {
        self.offload
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `transform` over `chunks` and returns every output chunk.
    fn run(transform: &mut dyn Transform, chunks: &[&[u8]]) -> Result<Vec<Bytes>, BoxError> {
        let mut out = Vec::new();
        for chunk in chunks {
            transform.transform(Bytes::copy_from_slice(chunk), &mut out)?;
        }
        transform.finish(&mut out)?;
        Ok(out)
    }

    fn concat(chunks: &[Bytes]) -> Vec<u8> {
        chunks.iter().flat_map(|c| c.iter().copied()).collect()
    }

    /// Compressible but not trivial: counting text.
    fn sample(len: usize) -> Vec<u8> {
        (0..)
            .flat_map(|n: u32| format!("{n} ").into_bytes())
            .take(len)
            .collect()
    }

    fn compress(codec: Codec, data: &[u8], chunk: usize) -> Vec<u8> {
        let parts: Vec<&[u8]> = data.chunks(chunk).collect();
        concat(&run(&mut Compress::new(codec), &parts).unwrap())
    }

    #[test]
    fn round_trips_through_any_chunking() {
        let data = sample(300_000);
        for codec in [Codec::Zstd, Codec::Gzip] {
            for (compress_chunk, decompress_chunk) in [(1000, 7), (65_536, 65_536), (300_000, 1)] {
                let compressed = compress(codec, &data, compress_chunk);
                assert!(compressed.len() < data.len() / 2, "{codec}: {} bytes", compressed.len());
                let parts: Vec<&[u8]> = compressed.chunks(decompress_chunk).collect();
                let out = run(&mut Decompress::new(codec).piece_size(10_000), &parts).unwrap();
                assert!(out.iter().all(|c| !c.is_empty() && c.len() <= 10_000));
                assert_eq!(concat(&out), data, "{codec} {compress_chunk}/{decompress_chunk}");
            }
        }
    }

    #[test]
    fn empty_input_round_trips_but_no_frame_at_all_is_an_error() {
        for codec in [Codec::Zstd, Codec::Gzip] {
            let compressed = compress(codec, b"", 1);
            assert!(!compressed.is_empty());
            let out = run(&mut Decompress::new(codec), &[&compressed]).unwrap();
            assert!(concat(&out).is_empty());
            let error = run(&mut Decompress::new(codec), &[]).unwrap_err();
            assert!(error.downcast_ref::<TransformError>().is_some(), "{codec}: {error}");
        }
    }

    #[test]
    fn concatenated_frames_and_members_decode_in_order() {
        for codec in [Codec::Zstd, Codec::Gzip] {
            let mut both = compress(codec, b"first ", 3);
            both.extend(compress(codec, b"second", 3));
            let out = run(&mut Decompress::new(codec), &[&both]).unwrap();
            assert_eq!(concat(&out), b"first second");
        }
    }

    #[test]
    fn truncated_corrupt_and_trailing_garbage_are_codec_errors() {
        let data = sample(50_000);
        for codec in [Codec::Zstd, Codec::Gzip] {
            let compressed = compress(codec, &data, 4096);
            let truncated = &compressed[..compressed.len() - 5];
            let mut corrupt = compressed.clone();
            let middle = corrupt.len() / 2;
            corrupt[middle] ^= 0xff;
            let mut trailing = compressed.clone();
            trailing.extend_from_slice(b"garbage!");
            for (what, input) in [("truncated", truncated), ("corrupt", &corrupt), ("trailing", &trailing)] {
                let result = run(&mut Decompress::new(codec), &[input]);
                let error = result.map(|out| concat(&out).len()).unwrap_err();
                let error = error.downcast_ref::<TransformError>().unwrap();
                assert!(matches!(error, TransformError::Codec { .. }), "{codec} {what}: {error}");
            }
        }
    }

    #[test]
    fn a_decompression_bomb_stops_at_the_output_limit() {
        let zeros = vec![0u8; 8 << 20];
        for codec in [Codec::Zstd, Codec::Gzip] {
            let bomb = compress(codec, &zeros, 1 << 20);
            assert!(bomb.len() < 64 << 10, "{codec}: {} bytes", bomb.len());
            let mut decompress = Decompress::new(codec).max_output_per_chunk(1 << 20);
            let mut out = Vec::new();
            let error = decompress.transform(Bytes::from(bomb), &mut out).unwrap_err();
            let error = error.downcast_ref::<TransformError>().unwrap();
            assert!(
                matches!(error, TransformError::OutputLimit { limit, chunk: 0, .. } if *limit == 1 << 20),
                "{codec}: {error}"
            );
            assert!(concat(&out).len() <= 1 << 20);
        }
    }

    #[test]
    fn zstd_frames_wanting_a_larger_window_are_refused() {
        let data = sample(1 << 20);
        let mut encoder = zstd::stream::raw::Encoder::new(3).unwrap();
        encoder
            .set_parameter(zstd::stream::raw::CParameter::WindowLog(20))
            .unwrap();
        let mut writer = zstd::stream::write::Encoder::with_encoder(Vec::new(), encoder);
        writer.write_all(&data).unwrap();
        let compressed = writer.finish().unwrap();
        let error = run(&mut Decompress::zstd().window_log_max(15), &[&compressed]).unwrap_err();
        assert!(error.downcast_ref::<TransformError>().is_some(), "{error}");
        let out = run(&mut Decompress::zstd().window_log_max(20), &[&compressed]).unwrap();
        assert_eq!(concat(&out), data);
    }

    #[test]
    fn compressed_output_comes_in_bounded_pieces() {
        // Random bytes do not compress: the output is as large as the input.
        let data = weir_harness::synthetic_bytes(3, 200_000, 4096);
        for codec in [Codec::Zstd, Codec::Gzip] {
            let out = run(&mut Compress::new(codec).piece_size(4096), &[&data]).unwrap();
            assert!(out.len() > 1, "{codec}");
            assert!(out.iter().all(|c| !c.is_empty() && c.len() <= 4096), "{codec}");
        }
    }

    #[test]
    fn levels_are_clamped_and_stages_declare_offload() {
        assert_eq!(Compress::gzip(42).level, 9);
        assert_eq!(Compress::zstd(1000).level, *zstd::compression_level_range().end());
        assert!(Compress::zstd(3).cpu_heavy());
        assert!(!Decompress::gzip().offload(false).cpu_heavy());
        assert_eq!(Decompress::zstd().name(), "zstd-decompress");
        assert_eq!(Compress::gzip(1).name(), "gzip-compress");
    }
}

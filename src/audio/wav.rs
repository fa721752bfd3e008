//! Reading and writing WAV files: any rate, channels or sample format in, mono out.

use std::path::Path;

use super::resample::{f32_to_i16, i16_to_f32, resample};

#[derive(Debug, thiserror::Error)]
pub enum WavError {
    #[error("{path}: not a readable WAV file ({source})")]
    Read { path: String, source: hound::Error },
    #[error("{path}: empty audio")]
    Empty { path: String },
    #[error("cannot write {path}: {source}")]
    Write { path: String, source: hound::Error },
}

/// Reads a WAV as mono f32 at its own rate.
pub fn read_mono(path: &Path) -> Result<(Vec<f32>, u32), WavError> {
    let name = path.display().to_string();
    let reader = hound::WavReader::open(path).map_err(|source| WavError::Read {
        path: name.clone(),
        source,
    })?;
    decode(reader, &name)
}

pub fn read_mono_bytes(bytes: &[u8]) -> Result<(Vec<f32>, u32), WavError> {
    let reader =
        hound::WavReader::new(std::io::Cursor::new(bytes)).map_err(|source| WavError::Read {
            path: "<embedded>".into(),
            source,
        })?;
    decode(reader, "<embedded>")
}

fn decode<R: std::io::Read>(
    reader: hound::WavReader<R>,
    name: &str,
) -> Result<(Vec<f32>, u32), WavError> {
    let spec = reader.spec();
    let err = |source| WavError::Read {
        path: name.to_string(),
        source,
    };
    let interleaved: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader
            .into_samples::<f32>()
            .collect::<Result<_, _>>()
            .map_err(err)?,
        hound::SampleFormat::Int => {
            let scale = (1i64 << (spec.bits_per_sample - 1)) as f32;
            reader
                .into_samples::<i32>()
                .map(|s| s.map(|v| v as f32 / scale))
                .collect::<Result<_, _>>()
                .map_err(err)?
        }
    };
    let ch = spec.channels.max(1) as usize;
    let mono: Vec<f32> = interleaved
        .chunks(ch)
        .map(|c| c.iter().sum::<f32>() / ch as f32)
        .collect();
    if mono.is_empty() {
        return Err(WavError::Empty {
            path: name.to_string(),
        });
    }
    Ok((mono, spec.sample_rate))
}

/// Reads any WAV and converts it to mono i16 at `rate`.
pub fn read_at(path: &Path, rate: u32) -> Result<Vec<i16>, WavError> {
    let (pcm, r) = read_mono(path)?;
    Ok(f32_to_i16(&resample(&pcm, r, rate)))
}

pub fn write_i16(path: &Path, pcm: &[i16], rate: u32) -> Result<(), WavError> {
    let name = path.display().to_string();
    let err = |source| WavError::Write {
        path: name.clone(),
        source,
    };
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).map_err(err)?;
    for &s in pcm {
        w.write_sample(s).map_err(err)?;
    }
    w.finalize().map_err(err)
}

/// Root-mean-square level of a 16-bit frame, 0..1.
pub fn level(pcm: &[i16]) -> f32 {
    if pcm.is_empty() {
        return 0.0;
    }
    let f = i16_to_f32(pcm);
    (f.iter().map(|s| s * s).sum::<f32>() / f.len() as f32).sqrt()
}

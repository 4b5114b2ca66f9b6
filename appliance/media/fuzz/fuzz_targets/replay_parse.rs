//! Feeds arbitrary bytes to the replay file parser: it must return an error or a file whose
//! invariants hold, never panic or allocate without bound.
#![no_main]

use bytes::Bytes;
use lanterne_media::replay::{ReplayFile, MAX_AU_BYTES, MAX_FRAMES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(file) = ReplayFile::parse(Bytes::copy_from_slice(data)) {
        assert!(file.frames().len() <= MAX_FRAMES as usize);
        let mut previous = 0;
        for (i, f) in file.frames().enumerate() {
            assert!(f.data.len() as u32 <= MAX_AU_BYTES && !f.data.is_empty());
            assert!(f.pts_us >= previous);
            assert!(i > 0 || f.keyframe);
            previous = f.pts_us;
        }
    }
});

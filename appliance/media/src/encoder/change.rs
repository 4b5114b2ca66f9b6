//! Rate control for screens: a picture identical to the last one encoded is not encoded.
//!
//! A classroom screen is mostly still (a slide, a page being read, an idle desktop). An
//! encoder fed the same picture at the stream's rate still makes a frame for each (a few
//! dozen bytes with x264, more with hardware encoders), the box still decodes each of them
//! for the mosaic, and every periodic keyframe resends the whole picture. The gate sits in
//! front of the encoder and lets a picture through only when it differs from the last one
//! let through, so a still screen sends nothing at all and a blinking cursor sends a small
//! frame per blink: the frame rate follows what changes, up to the stream's rate.
//!
//! A keyframe that is owed (a stream just switched on, a receiver resyncing, a viewer that
//! joined) is made from the next picture whatever it shows: the caller passes `force` until
//! the keyframe has come out of the encoder, because an encoder only makes one when it is
//! given a picture.
//!
//! The comparison is exact, on the visible bytes of each plane (row padding is skipped: its
//! content is undefined). It stops at the first difference, so a changing screen costs one
//! copy of the scaled picture per frame; a still one costs one comparison.

/// Remembers the visible bytes of the last picture let through.
#[derive(Debug, Default)]
pub(crate) struct ChangeGate {
    last: Vec<u8>,
    /// `last` holds a picture (an empty picture is still a picture).
    have: bool,
}

impl ChangeGate {
    /// Whether the picture made of `rows` (every visible row of every plane, in order) goes
    /// to the encoder. `force`: a keyframe is owed, so it goes whatever it shows.
    pub(crate) fn admit<'a, I>(&mut self, rows: I, force: bool) -> bool
    where
        I: IntoIterator<Item = &'a [u8]> + Clone,
    {
        let same = self.have && self.same_as_last(rows.clone());
        if same && !force {
            return false;
        }
        if !same {
            self.last.clear();
            for r in rows {
                self.last.extend_from_slice(r);
            }
            self.have = true;
        }
        true
    }

    fn same_as_last<'a, I: IntoIterator<Item = &'a [u8]>>(&self, rows: I) -> bool {
        let mut at = 0usize;
        for r in rows {
            let end = at + r.len();
            if end > self.last.len() || self.last[at..end] != *r {
                return false;
            }
            at = end;
        }
        at == self.last.len()
    }

    /// Forgets the last picture (the stream switched off): the next one always goes, and the
    /// memory is returned.
    pub(crate) fn reset(&mut self) {
        self.last = Vec::new();
        self.have = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picture(fill: u8) -> Vec<Vec<u8>> {
        // Two planes' worth of rows, as an I420 picture is walked.
        vec![vec![fill; 8], vec![fill; 8], vec![128; 4], vec![128; 4]]
    }

    fn rows(p: &[Vec<u8>]) -> impl Iterator<Item = &[u8]> + Clone {
        p.iter().map(Vec::as_slice)
    }

    #[test]
    fn a_still_screen_is_encoded_once() {
        let mut g = ChangeGate::default();
        let p = picture(16);
        assert!(g.admit(rows(&p), false), "the first picture always goes");
        for _ in 0..50 {
            assert!(
                !g.admit(rows(&p), false),
                "an unchanged picture was encoded"
            );
        }
    }

    #[test]
    fn any_changed_byte_goes_through_and_becomes_the_new_reference() {
        let mut g = ChangeGate::default();
        let p = picture(16);
        assert!(g.admit(rows(&p), false));
        // A blinking cursor: one byte in the last chroma row.
        let mut blink = p.clone();
        blink[3][3] = 129;
        assert!(g.admit(rows(&blink), false));
        assert!(
            !g.admit(rows(&blink), false),
            "the blink is now the reference"
        );
        assert!(
            g.admit(rows(&p), false),
            "and blinking back is a change too"
        );
    }

    #[test]
    fn an_owed_keyframe_takes_the_next_picture_even_when_still() {
        let mut g = ChangeGate::default();
        let p = picture(16);
        assert!(g.admit(rows(&p), false));
        assert!(!g.admit(rows(&p), false));
        assert!(
            g.admit(rows(&p), true),
            "a keyframe is owed: the still picture must go"
        );
        assert!(
            !g.admit(rows(&p), false),
            "once made, still pictures stop again"
        );
    }

    #[test]
    fn a_new_size_is_a_change_and_reset_forgets() {
        let mut g = ChangeGate::default();
        let p = picture(16);
        assert!(g.admit(rows(&p), false));
        // Same bytes, one row fewer (a smaller picture after a resize): a change.
        assert!(g.admit(rows(&p[..3]), false));
        assert!(g.admit(rows(&p), false), "a longer picture is a change too");
        g.reset();
        assert!(
            g.admit(rows(&p), false),
            "after a reset the first picture goes"
        );
    }
}

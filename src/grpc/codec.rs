//! tonic's prost codec with buffers sized for this service's messages.
//!
//! The default codec starts every call's encode buffer at 8 KiB. Our answers
//! are 0.5–1 KiB, and an answer that waits for a peer's flow-control window
//! keeps its buffer: under a slow-reader attack that buffer was most of the
//! memory each stuck stream held (see docs/CAPACITY.md). 2 KiB holds nearly
//! every answer without growing; a larger one grows as it would anyway.

use std::marker::PhantomData;

use tonic::codec::{BufferSettings, Codec};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// Initial encode and decode buffer of one call.
const BUFFER_BYTES: usize = 2 * 1024;
/// tonic's default: a streamed body yields after this many buffered bytes.
const YIELD_THRESHOLD: usize = 32 * 1024;

/// The codec the generated service and client use (set in build.rs).
#[derive(Debug, Clone)]
pub struct SmallBufferCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for SmallBufferCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

fn settings() -> BufferSettings {
    BufferSettings::new(BUFFER_BYTES, YIELD_THRESHOLD)
}

impl<T, U> Codec for SmallBufferCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::raw_encoder(settings())
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstCodec::<T, U>::raw_decoder(settings())
    }
}

//! The serde format of everything that crosses the pipes: postcard's wire format (version 1 of
//! its specification), written and read by this module's own `Serializer` and `Deserializer`.
//!
//! Why not the `postcard` crate itself: on `map`'s hot path every task and every result is
//! encoded and decoded on its own (so that one bad item fails only its own slot, rule H4), 200,000
//! times for a 200k-item `map`. postcard builds each varint byte by byte in a buffer on the stack
//! and hands it to its output as a slice, and its reader's `deserialize_u64` was not inlined into
//! the worker's loop. Here a varint of up to eight bytes is gathered in a register and stored
//! with one 8-byte write, and the hot readers and writers are forced inline: the parent encodes a
//! `u64` newtype task in ~1 ns instead of ~3.6 ns. The format stays postcard's, byte for byte:
//! the tests below encode and decode a wide set of types both ways against the `postcard` crate.
//!
//! The other difference: a `Serialize` or `Deserialize` that fails with its own message
//! (`Error::custom("why")`) keeps the message, where postcard reports only "Serde Serialization
//! Error".
//!
//! ```text
//! bool           1 byte, 0 or 1             u8, i8        1 byte
//! u16..u64,usize LEB128 varint              i16..i64      zigzag, then varint
//! u128 / i128    varint (zigzag)            f32, f64      little-endian bytes
//! char, str      varint length, UTF-8       bytes         varint length, bytes
//! Option         0, or 1 then the value     unit, unit struct: nothing
//! seq, map       varint length, elements    tuple, struct: the fields in order, no length
//! enum variant   varint index, then its fields like a tuple
//! ```

use std::fmt;

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};
use serde::{Deserialize, Serialize, ser};

/// Why a value could not be encoded or decoded: one word (boxed), so that a `Result` of a small
/// value comes back in registers; errors are rare, and the hot paths only pass them along.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Error(Box<ErrorKind>);

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    /// The input ended inside a value.
    Eof,
    /// A varint runs past its type's longest encoding, or overflows it.
    BadVarint,
    /// A `bool` byte is neither 0 nor 1.
    BadBool,
    /// A `char` is not one UTF-8 character.
    BadChar,
    /// A string is not UTF-8.
    BadUtf8,
    /// An `Option` tag is neither 0 nor 1.
    BadOption,
    /// An enum's variant index is not one of its variants.
    BadEnum,
    /// A sequence or map that does not know its length (postcard writes the length first).
    UnknownLength,
    /// The type needs a self-describing format (`deserialize_any`, for example
    /// `serde_json::Value` or an untagged enum), which postcard's is not.
    NotSelfDescribing,
    /// The value's own `Serialize` or `Deserialize` failed, with this message.
    Custom(String),
}

impl From<ErrorKind> for Error {
    #[cold]
    fn from(kind: ErrorKind) -> Self {
        Error(Box::new(kind))
    }
}

impl Error {
    /// What went wrong.
    #[cfg(test)]
    pub(crate) fn kind(&self) -> &ErrorKind {
        &self.0
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ErrorKind as Error;
        f.write_str(match &*self.0 {
            Error::Eof => "the input ended inside a value",
            Error::BadVarint => "a varint is too long for its type",
            Error::BadBool => "a bool is neither 0 nor 1",
            Error::BadChar => "a char is not one UTF-8 character",
            Error::BadUtf8 => "a string is not UTF-8",
            Error::BadOption => "an Option's tag is neither 0 nor 1",
            Error::BadEnum => "an enum's variant index is out of range",
            Error::UnknownLength => {
                "a sequence or map of unknown length (postcard's format writes the length first)"
            }
            Error::NotSelfDescribing => {
                "the type needs a self-describing format (deserialize_any), which postcard's is not"
            }
            Error::Custom(message) => message,
        })
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error::from(ErrorKind::Custom(msg.to_string()))
    }
}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error::from(ErrorKind::Custom(msg.to_string()))
    }
}

/// What encoding and decoding return.
pub(crate) type Result<T> = std::result::Result<T, Error>;

/// Appends `value` to `out`; on failure `out` is left as it was.
#[inline]
pub(crate) fn append<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<()> {
    let mark = out.len();
    value
        .serialize(&mut Writer { out })
        .inspect_err(|_| out.truncate(mark))
}

/// Decodes one `T` from the front of `input`; returns it and the bytes after it.
#[inline]
pub(crate) fn take_from_bytes<'de, T: Deserialize<'de>>(
    input: &'de [u8],
) -> Result<(T, &'de [u8])> {
    let mut reader = Reader { input };
    let value = T::deserialize(&mut reader)?;
    Ok((value, reader.input))
}

/// Encodes `value` into a new buffer.
#[cfg(test)]
pub(crate) fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    append(value, &mut out)?;
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Writing

/// Appends a varint: up to eight bytes (values below 2^56) are gathered in a word and stored as
/// one 8-byte write, then the length is cut back (a `u8` needs no drop, so the cut is one store).
#[inline(always)]
fn put_varint(out: &mut Vec<u8>, value: u64) {
    if value >= 1 << 56 {
        return put_varint_long(out, u128::from(value));
    }
    let mut v = value;
    let mut word = 0u64;
    let mut len = 0;
    while v >= 0x80 {
        word |= ((v & 0x7f) | 0x80) << (8 * len);
        v >>= 7;
        len += 1;
    }
    word |= v << (8 * len);
    let at = out.len();
    out.extend_from_slice(&word.to_le_bytes());
    out.truncate(at + len + 1);
}

#[cold]
fn put_varint_long(out: &mut Vec<u8>, mut v: u128) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i128) -> u128 {
    ((v << 1) ^ (v >> 127)) as u128
}

struct Writer<'a> {
    out: &'a mut Vec<u8>,
}

impl Writer<'_> {
    #[inline(always)]
    fn varint(&mut self, v: u64) {
        put_varint(self.out, v);
    }

    /// An enum variant's index, before its fields.
    #[inline]
    fn variant(&mut self, index: u32) -> Result<&mut Self> {
        self.varint(u64::from(index));
        Ok(self)
    }

    /// A sequence's or map's length, before its elements: postcard's format needs it.
    #[inline]
    fn length(&mut self, len: Option<usize>) -> Result<&mut Self> {
        self.varint(len.ok_or_else(|| Error::from(ErrorKind::UnknownLength))? as u64);
        Ok(self)
    }

    #[inline(always)]
    fn bytes(&mut self, bytes: &[u8]) {
        self.varint(bytes.len() as u64);
        self.out.extend_from_slice(bytes);
    }
}

impl<'a> ser::Serializer for &mut Writer<'a> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    fn is_human_readable(&self) -> bool {
        false
    }

    #[inline(always)]
    fn serialize_bool(self, v: bool) -> Result<()> {
        self.out.push(u8::from(v));
        Ok(())
    }

    #[inline(always)]
    fn serialize_i8(self, v: i8) -> Result<()> {
        self.out.push(v as u8);
        Ok(())
    }

    #[inline(always)]
    fn serialize_i16(self, v: i16) -> Result<()> {
        self.varint(((v << 1) ^ (v >> 15)) as u16 as u64);
        Ok(())
    }

    #[inline(always)]
    fn serialize_i32(self, v: i32) -> Result<()> {
        self.varint(((v << 1) ^ (v >> 31)) as u32 as u64);
        Ok(())
    }

    #[inline(always)]
    fn serialize_i64(self, v: i64) -> Result<()> {
        self.varint(((v << 1) ^ (v >> 63)) as u64);
        Ok(())
    }

    fn serialize_i128(self, v: i128) -> Result<()> {
        put_varint_long(self.out, zigzag(v));
        Ok(())
    }

    #[inline(always)]
    fn serialize_u8(self, v: u8) -> Result<()> {
        self.out.push(v);
        Ok(())
    }

    #[inline(always)]
    fn serialize_u16(self, v: u16) -> Result<()> {
        self.varint(u64::from(v));
        Ok(())
    }

    #[inline(always)]
    fn serialize_u32(self, v: u32) -> Result<()> {
        self.varint(u64::from(v));
        Ok(())
    }

    #[inline(always)]
    fn serialize_u64(self, v: u64) -> Result<()> {
        self.varint(v);
        Ok(())
    }

    fn serialize_u128(self, v: u128) -> Result<()> {
        put_varint_long(self.out, v);
        Ok(())
    }

    #[inline(always)]
    fn serialize_f32(self, v: f32) -> Result<()> {
        self.out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }

    #[inline(always)]
    fn serialize_f64(self, v: f64) -> Result<()> {
        self.out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }

    fn serialize_char(self, v: char) -> Result<()> {
        self.bytes(v.encode_utf8(&mut [0; 4]).as_bytes());
        Ok(())
    }

    #[inline]
    fn serialize_str(self, v: &str) -> Result<()> {
        self.bytes(v.as_bytes());
        Ok(())
    }

    #[inline]
    fn serialize_bytes(self, v: &[u8]) -> Result<()> {
        self.bytes(v);
        Ok(())
    }

    #[inline(always)]
    fn serialize_none(self) -> Result<()> {
        self.out.push(0);
        Ok(())
    }

    #[inline(always)]
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<()> {
        self.out.push(1);
        value.serialize(self)
    }

    #[inline(always)]
    fn serialize_unit(self) -> Result<()> {
        Ok(())
    }

    #[inline(always)]
    fn serialize_unit_struct(self, _name: &'static str) -> Result<()> {
        Ok(())
    }

    #[inline]
    fn serialize_unit_variant(self, _: &'static str, index: u32, _: &'static str) -> Result<()> {
        self.variant(index).map(drop)
    }

    #[inline(always)]
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<()> {
        value.serialize(self)
    }

    #[inline]
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        value: &T,
    ) -> Result<()> {
        value.serialize(self.variant(index)?)
    }

    #[inline]
    fn serialize_seq(self, len: Option<usize>) -> Result<Self> {
        self.length(len)
    }

    #[inline(always)]
    fn serialize_tuple(self, _len: usize) -> Result<Self> {
        Ok(self)
    }

    #[inline(always)]
    fn serialize_tuple_struct(self, _: &'static str, _len: usize) -> Result<Self> {
        Ok(self)
    }

    #[inline]
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        _len: usize,
    ) -> Result<Self> {
        self.variant(index)
    }

    #[inline]
    fn serialize_map(self, len: Option<usize>) -> Result<Self> {
        self.length(len)
    }

    #[inline(always)]
    fn serialize_struct(self, _: &'static str, _len: usize) -> Result<Self> {
        Ok(self)
    }

    #[inline]
    fn serialize_struct_variant(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        _len: usize,
    ) -> Result<Self> {
        self.variant(index)
    }

    fn collect_str<T: fmt::Display + ?Sized>(self, value: &T) -> Result<()> {
        self.serialize_str(&value.to_string())
    }
}

/// The compound writers: postcard writes a compound's elements one after another, with no
/// separators and nothing at the end.
macro_rules! compound {
    ($($trait:ident :: $method:ident $(($key:ident))?),* $(,)?) => {$(
        impl ser::$trait for &mut Writer<'_> {
            type Ok = ();
            type Error = Error;

            #[inline(always)]
            fn $method<T: Serialize + ?Sized>(
                &mut self,
                $($key: &'static str,)?
                value: &T,
            ) -> Result<()> {
                $(let _ = $key;)?
                value.serialize(&mut **self)
            }

            #[inline(always)]
            fn end(self) -> Result<()> {
                Ok(())
            }
        }
    )*};
}

compound!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field,
    SerializeStruct::serialize_field(_key),
    SerializeStructVariant::serialize_field(_key),
);

impl ser::SerializeMap for &mut Writer<'_> {
    type Ok = ();
    type Error = Error;

    #[inline(always)]
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<()> {
        key.serialize(&mut **self)
    }

    #[inline(always)]
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        value.serialize(&mut **self)
    }

    #[inline(always)]
    fn end(self) -> Result<()> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Reading

struct Reader<'de> {
    input: &'de [u8],
}

impl<'de> Reader<'de> {
    #[inline(always)]
    fn byte(&mut self) -> Result<u8> {
        let (&byte, rest) = self
            .input
            .split_first()
            .ok_or_else(|| Error::from(ErrorKind::Eof))?;
        self.input = rest;
        Ok(byte)
    }

    #[inline(always)]
    fn take(&mut self, n: usize) -> Result<&'de [u8]> {
        if n > self.input.len() {
            return Err(Error::from(ErrorKind::Eof));
        }
        let (taken, rest) = self.input.split_at(n);
        self.input = rest;
        Ok(taken)
    }

    /// A varint of at most `MAX` bytes whose last byte is at most `LAST` (so that it fits its
    /// type), as postcard reads it: a longer or overflowing one is an error, a non-canonical one
    /// (trailing zero groups) is accepted.
    #[inline(always)]
    fn varint<const MAX: usize, const LAST: u8>(&mut self) -> Result<u64> {
        // Read from a copy of the slice and move the reader once at the end: the reader lives
        // in memory when a user's `deserialize` is not inlined, and moving it byte by byte cost
        // two stores a byte.
        let input = self.input;
        let mut out = 0u64;
        for i in 0..MAX {
            let Some(&byte) = input.get(i) else {
                return Err(ErrorKind::Eof.into());
            };
            out |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                if i == MAX - 1 && byte > LAST {
                    return Err(ErrorKind::BadVarint.into());
                }
                self.input = &input[i + 1..];
                return Ok(out);
            }
        }
        Err(ErrorKind::BadVarint.into())
    }

    #[inline(always)]
    fn varint_u16(&mut self) -> Result<u16> {
        self.varint::<3, 0b11>().map(|v| v as u16)
    }

    #[inline(always)]
    fn varint_u32(&mut self) -> Result<u32> {
        self.varint::<5, 0b1111>().map(|v| v as u32)
    }

    #[inline(always)]
    fn varint_u64(&mut self) -> Result<u64> {
        self.varint::<10, 0b1>()
    }

    #[inline(always)]
    fn varint_usize(&mut self) -> Result<usize> {
        usize::try_from(self.varint_u64()?).map_err(|_| Error::from(ErrorKind::BadVarint))
    }

    fn varint_u128(&mut self) -> Result<u128> {
        let mut out = 0u128;
        for i in 0..19 {
            let byte = self.byte()?;
            out |= u128::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                if i == 18 && byte > 0b11 {
                    return Err(Error::from(ErrorKind::BadVarint));
                }
                return Ok(out);
            }
        }
        Err(Error::from(ErrorKind::BadVarint))
    }

    #[inline(always)]
    fn f32(&mut self) -> Result<f32> {
        Ok(f32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    #[inline(always)]
    fn f64(&mut self) -> Result<f64> {
        Ok(f64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    #[inline]
    fn str(&mut self) -> Result<&'de str> {
        let len = self.varint_usize()?;
        std::str::from_utf8(self.take(len)?).map_err(|_| Error::from(ErrorKind::BadUtf8))
    }
}

/// `Deserializer` methods that read one value with a `Reader` method and hand it to the visitor.
macro_rules! read {
    ($($method:ident => $visit:ident($read:ident)),* $(,)?) => {$(
        #[inline(always)]
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
            visitor.$visit(self.$read()?)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for &mut Reader<'de> {
    type Error = Error;

    fn is_human_readable(&self) -> bool {
        false
    }

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value> {
        Err(Error::from(ErrorKind::NotSelfDescribing))
    }

    #[inline(always)]
    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.byte()? {
            0 => visitor.visit_bool(false),
            1 => visitor.visit_bool(true),
            _ => Err(Error::from(ErrorKind::BadBool)),
        }
    }

    #[inline(always)]
    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_i8(self.byte()? as i8)
    }

    #[inline(always)]
    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let v = self.varint_u16()?;
        visitor.visit_i16((v >> 1) as i16 ^ -((v & 1) as i16))
    }

    #[inline(always)]
    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let v = self.varint_u32()?;
        visitor.visit_i32((v >> 1) as i32 ^ -((v & 1) as i32))
    }

    #[inline(always)]
    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let v = self.varint_u64()?;
        visitor.visit_i64((v >> 1) as i64 ^ -((v & 1) as i64))
    }

    fn deserialize_i128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let v = self.varint_u128()?;
        visitor.visit_i128((v >> 1) as i128 ^ -((v & 1) as i128))
    }

    read!(
        deserialize_u8 => visit_u8(byte),
        deserialize_u16 => visit_u16(varint_u16),
        deserialize_u32 => visit_u32(varint_u32),
        deserialize_u64 => visit_u64(varint_u64),
        deserialize_u128 => visit_u128(varint_u128),
        deserialize_f32 => visit_f32(f32),
        deserialize_f64 => visit_f64(f64),
    );

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let len = self.varint_usize()?;
        if len > 4 {
            return Err(Error::from(ErrorKind::BadChar));
        }
        let s =
            std::str::from_utf8(self.take(len)?).map_err(|_| Error::from(ErrorKind::BadChar))?;
        let mut chars = s.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => visitor.visit_char(c),
            _ => Err(Error::from(ErrorKind::BadChar)),
        }
    }

    #[inline]
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_borrowed_str(self.str()?)
    }

    #[inline]
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_borrowed_str(self.str()?)
    }

    #[inline]
    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let len = self.varint_usize()?;
        visitor.visit_borrowed_bytes(self.take(len)?)
    }

    #[inline]
    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_bytes(visitor)
    }

    #[inline(always)]
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.byte()? {
            0 => visitor.visit_none(),
            1 => visitor.visit_some(self),
            _ => Err(Error::from(ErrorKind::BadOption)),
        }
    }

    #[inline(always)]
    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_unit()
    }

    #[inline(always)]
    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_unit()
    }

    #[inline(always)]
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_newtype_struct(self)
    }

    #[inline]
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let len = self.varint_usize()?;
        visitor.visit_seq(Elements { reader: self, len })
    }

    #[inline(always)]
    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value> {
        visitor.visit_seq(Elements { reader: self, len })
    }

    #[inline(always)]
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_seq(Elements { reader: self, len })
    }

    #[inline]
    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let len = self.varint_usize()?;
        visitor.visit_map(Elements { reader: self, len })
    }

    #[inline(always)]
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_seq(Elements {
            reader: self,
            len: fields.len(),
        })
    }

    #[inline]
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_enum(self)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value> {
        Err(Error::from(ErrorKind::NotSelfDescribing))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value> {
        Err(Error::from(ErrorKind::NotSelfDescribing))
    }
}

/// The elements of a sequence, tuple, struct or map: `len` values one after another.
struct Elements<'a, 'de> {
    reader: &'a mut Reader<'de>,
    len: usize,
}

impl<'de> Elements<'_, 'de> {
    /// The next element (or key), if any are left.
    #[inline(always)]
    fn next<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        if self.len == 0 {
            return Ok(None);
        }
        self.len -= 1;
        seed.deserialize(&mut *self.reader).map(Some)
    }

    /// How many are left, unless that is more than the bytes left: then the length is corrupt
    /// (every element takes a byte, in practice), and must not size an allocation.
    fn left(&self) -> Option<usize> {
        (self.len <= self.reader.input.len()).then_some(self.len)
    }
}

impl<'de> de::SeqAccess<'de> for Elements<'_, 'de> {
    type Error = Error;

    #[inline(always)]
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        self.next(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.left()
    }
}

impl<'de> de::MapAccess<'de> for Elements<'_, 'de> {
    type Error = Error;

    #[inline(always)]
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        self.next(seed)
    }

    #[inline(always)]
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        seed.deserialize(&mut *self.reader)
    }

    fn size_hint(&self) -> Option<usize> {
        self.left()
    }
}

impl<'de> de::EnumAccess<'de> for &mut Reader<'de> {
    type Error = Error;
    type Variant = Self;

    #[inline]
    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self)> {
        let index = self.varint_u32()?;
        let value = seed.deserialize(IntoDeserializer::<Error>::into_deserializer(index))?;
        Ok((value, self))
    }
}

impl<'de> de::VariantAccess<'de> for &mut Reader<'de> {
    type Error = Error;

    #[inline]
    fn unit_variant(self) -> Result<()> {
        Ok(())
    }

    #[inline]
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value> {
        seed.deserialize(self)
    }

    #[inline]
    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value> {
        visitor.visit_seq(Elements { reader: self, len })
    }

    #[inline]
    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_seq(Elements {
            reader: self,
            len: fields.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::fmt::Debug;

    use serde::de::DeserializeOwned;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Unit;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Newtype(u64);

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Pair(i32, String);

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Kind {
        Unit,
        Newtype(i64),
        Tuple(u8, char),
        Struct { a: Option<u16>, b: Vec<bool> },
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Everything {
        flag: bool,
        i8: i8,
        i16: i16,
        i32: i32,
        i64: i64,
        i128: i128,
        u8: u8,
        u16: u16,
        u32: u32,
        u64: u64,
        u128: u128,
        usize: usize,
        f32: f32,
        f64: f64,
        ch: char,
        text: String,
        #[serde(with = "serde_bytes_like")]
        bytes: Vec<u8>,
        none: Option<u32>,
        some: Option<Box<Everything>>,
        unit: (),
        unit_struct: Unit,
        newtype: Newtype,
        pair: Pair,
        tuple: (u8, i16, String),
        kinds: Vec<Kind>,
        map: BTreeMap<String, Vec<u64>>,
        array: [u16; 3],
    }

    /// `Vec<u8>` through `serialize_bytes` / `deserialize_byte_buf` (serde's default for a
    /// `Vec<u8>` is a sequence).
    mod serde_bytes_like {
        use serde::{Deserializer, Serializer};

        pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(v)
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
            struct Bytes;
            impl serde::de::Visitor<'_> for Bytes {
                type Value = Vec<u8>;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("bytes")
                }
                fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                    Ok(v.to_vec())
                }
            }
            d.deserialize_byte_buf(Bytes)
        }
    }

    fn everything(seed: u64) -> Everything {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Every magnitude, not only huge numbers: shift by a random amount.
            x >> (x % 64)
        };
        Everything {
            flag: next() % 2 == 0,
            i8: next() as i8,
            i16: next() as i16,
            i32: next() as i32,
            i64: next() as i64 - (next() as i64),
            i128: (i128::from(next() as i64) << 64) | i128::from(next()),
            u8: next() as u8,
            u16: next() as u16,
            u32: next() as u32,
            u64: next(),
            u128: (u128::from(next()) << 64) | u128::from(next()),
            usize: next() as usize,
            f32: next() as f32 / 3.0,
            f64: -(next() as f64) / 7.0,
            ch: char::from_u32((next() % 0x11_0000) as u32).unwrap_or('\u{1F980}'),
            text: "żółw 🦀 ".repeat((next() % 5) as usize),
            bytes: (0..next() % 300).map(|i| i as u8).collect(),
            none: None,
            some: (seed % 3 == 0).then(|| Box::new(everything(seed + 1))),
            unit: (),
            unit_struct: Unit,
            newtype: Newtype(next()),
            pair: Pair(next() as i32, "p".repeat((next() % 200) as usize)),
            tuple: (next() as u8, next() as i16, String::new()),
            kinds: vec![
                Kind::Unit,
                Kind::Newtype(next() as i64),
                Kind::Tuple(next() as u8, 'x'),
                Kind::Struct {
                    a: Some(next() as u16),
                    b: vec![true, false],
                },
                Kind::Struct { a: None, b: vec![] },
            ],
            map: (0..next() % 4)
                .map(|i| (format!("k{i}"), vec![i, u64::MAX - i]))
                .collect(),
            array: [next() as u16, u16::MAX, 0],
        }
    }

    /// Encodes with this module and with postcard, checks the bytes are equal, and decodes each
    /// side's bytes with the other.
    fn same_as_postcard<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T) {
        let ours = to_vec(value).unwrap();
        let theirs = postcard::to_allocvec(value).unwrap();
        assert_eq!(ours, theirs, "encoding of {value:?}");
        let (back, rest) = take_from_bytes::<T>(&theirs).unwrap();
        assert_eq!(&back, value);
        assert!(rest.is_empty());
        assert_eq!(&postcard::from_bytes::<T>(&ours).unwrap(), value);
    }

    #[test]
    fn bytes_are_postcards_both_ways() {
        for seed in 0..300 {
            same_as_postcard(&everything(seed));
        }
        for v in [
            0u64,
            1,
            127,
            128,
            255,
            16_383,
            16_384,
            1 << 55,
            (1 << 56) - 1,
            1 << 56,
        ] {
            same_as_postcard(&v);
        }
        same_as_postcard(&u64::MAX);
        same_as_postcard(&i64::MIN);
        same_as_postcard(&(i16::MIN, i32::MIN, i64::MAX, u16::MAX, u32::MAX));
        same_as_postcard(&(u128::MAX, i128::MIN, i128::MAX));
        same_as_postcard(&(f64::NAN.to_bits(), f32::INFINITY, -0.0f64));
        same_as_postcard(&Some(Some(())));
        same_as_postcard(&std::result::Result::<u8, String>::Err("e".into()));
        same_as_postcard(&vec![char::MAX, '\0', 'é']);
    }

    #[test]
    fn every_varint_width_round_trips() {
        for shift in 0..64 {
            for v in [1u64 << shift, (1u64 << shift) - 1, (1u64 << shift) + 1] {
                same_as_postcard(&v);
                same_as_postcard(&(v as i64).wrapping_neg());
                same_as_postcard(&(v as u32, v as u16, v as i32, v as i16));
            }
        }
    }

    #[test]
    fn a_cut_input_is_an_error_at_every_length() {
        let bytes = to_vec(&everything(3)).unwrap();
        for len in 0..bytes.len() {
            match take_from_bytes::<Everything>(&bytes[..len]) {
                Err(e) if *e.kind() == ErrorKind::Eof => {}
                other => panic!("prefix of {len} bytes: {other:?}"),
            }
        }
    }

    #[test]
    fn malformed_input_is_named() {
        assert_eq!(
            take_from_bytes::<bool>(&[2]).unwrap_err().kind(),
            &ErrorKind::BadBool
        );
        assert_eq!(
            take_from_bytes::<Option<u8>>(&[2, 0]).unwrap_err().kind(),
            &ErrorKind::BadOption
        );
        // Too long for a u16 (three bytes at most, the last at most 0b11)...
        assert_eq!(
            take_from_bytes::<u16>(&[0xff, 0xff, 0x04])
                .unwrap_err()
                .kind(),
            &ErrorKind::BadVarint
        );
        assert_eq!(
            take_from_bytes::<u16>(&[0x80, 0x80, 0x80, 0])
                .unwrap_err()
                .kind(),
            &ErrorKind::BadVarint
        );
        // ...and u16::MAX itself is fine; a non-canonical encoding is accepted, as postcard does.
        assert_eq!(
            take_from_bytes::<u16>(&[0xff, 0xff, 0x03]).unwrap().0,
            u16::MAX
        );
        assert_eq!(take_from_bytes::<u32>(&[0x81, 0x00]).unwrap().0, 1);
        assert_eq!(
            take_from_bytes::<u64>(&[0xff; 11]).unwrap_err().kind(),
            &ErrorKind::BadVarint
        );
        assert_eq!(
            take_from_bytes::<String>(&[2, 0xc3, 0x28])
                .unwrap_err()
                .kind(),
            &ErrorKind::BadUtf8
        );
        assert_eq!(
            take_from_bytes::<char>(&[2, b'a', b'b'])
                .unwrap_err()
                .kind(),
            &ErrorKind::BadChar
        );
        assert_eq!(
            take_from_bytes::<char>(&[5, 1, 1, 1, 1, 1])
                .unwrap_err()
                .kind(),
            &ErrorKind::BadChar
        );
        assert_eq!(
            to_vec(&Unsized).unwrap_err().kind(),
            &ErrorKind::UnknownLength,
            "a sequence without a length"
        );
        assert_eq!(
            take_from_bytes::<Any>(&[0]).unwrap_err().kind(),
            &ErrorKind::NotSelfDescribing
        );
        // A huge length with nothing behind it fails at the end of the input, without trying
        // to allocate for it first.
        let mut huge = Vec::new();
        put_varint(&mut huge, u64::MAX >> 1);
        assert_eq!(
            take_from_bytes::<Vec<u8>>(&huge).unwrap_err().kind(),
            &ErrorKind::Eof
        );
    }

    struct Unsized;

    impl Serialize for Unsized {
        fn serialize<S: ser::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
            use ser::SerializeSeq;
            s.serialize_seq(None)?.end()
        }
    }

    #[derive(Debug)]
    struct Any;

    impl<'de> Deserialize<'de> for Any {
        fn deserialize<D: de::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
            d.deserialize_any(de::IgnoredAny).map(|_| Any)
        }
    }

    #[derive(Debug)]
    struct Picky;

    impl Serialize for Picky {
        fn serialize<S: ser::Serializer>(&self, _: S) -> std::result::Result<S::Ok, S::Error> {
            Err(ser::Error::custom("picky refuses: no reason"))
        }
    }

    impl<'de> Deserialize<'de> for Picky {
        fn deserialize<D: de::Deserializer<'de>>(_: D) -> std::result::Result<Self, D::Error> {
            Err(de::Error::custom("picky will not be read"))
        }
    }

    #[test]
    fn a_custom_error_keeps_its_message_and_the_output_is_left_as_it_was() {
        let mut out = vec![7, 7];
        let e = append(&(1u64, 2u64, Picky), &mut out).unwrap_err();
        assert_eq!(e.to_string(), "picky refuses: no reason");
        assert_eq!(
            out,
            [7, 7],
            "what the tuple wrote before Picky failed is taken back"
        );
        let e = take_from_bytes::<Picky>(&[]).unwrap_err();
        assert_eq!(e.to_string(), "picky will not be read");
    }
}

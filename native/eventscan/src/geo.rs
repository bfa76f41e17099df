//! `GeoReader`: the look-up behind `utils/geoip.GeoIP`, reading of a record only what the answer
//! takes (the country's and registered country's ISO code, the first subdivision's). The Python
//! reader decodes the whole record into dicts (a City record: names in eight languages, location,
//! postal code...), which was most of the cost of a new address.

use maxminddb::{MaxMindDbError, Reader};
use memmap2::Mmap;
use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A map of the record (`country`, `registered_country`, a subdivision): whether it has any
/// entry (Python's `or` passes over an empty one) and its `iso_code`, which must be a string.
#[derive(Clone, Copy)]
struct Named<'a> {
    empty: bool,
    iso_code: Option<&'a str>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Named<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> Visitor<'de> for Fields {
            type Value = Named<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Named<'de>, A::Error> {
                let mut named = Named {
                    empty: true,
                    iso_code: None,
                };
                while let Some(key) = map.next_key::<&'de str>()? {
                    named.empty = false;
                    if key == "iso_code" {
                        named.iso_code = Some(map.next_value::<&'de str>()?);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(named)
            }
        }
        d.deserialize_map(Fields)
    }
}

/// What the answer reads of a record.
struct Record<'a> {
    empty: bool,
    country: Option<Named<'a>>,
    registered_country: Option<Named<'a>>,
    first_subdivision: Option<Named<'a>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Record<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> Visitor<'de> for Fields {
            type Value = Record<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Record<'de>, A::Error> {
                let mut record = Record {
                    empty: true,
                    country: None,
                    registered_country: None,
                    first_subdivision: None,
                };
                while let Some(key) = map.next_key::<&'de str>()? {
                    record.empty = false;
                    match key {
                        "country" => record.country = Some(map.next_value()?),
                        "registered_country" => record.registered_country = Some(map.next_value()?),
                        "subdivisions" => record.first_subdivision = map.next_value::<First>()?.0,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(record)
            }
        }
        d.deserialize_map(Fields)
    }
}

/// The first element of a list of maps (None for an empty list), the others passed over.
struct First<'a>(Option<Named<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for First<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Elements;
        impl<'de> Visitor<'de> for Elements {
            type Value = First<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list")
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<First<'de>, A::Error> {
                let first = seq.next_element::<Named<'de>>()?;
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(First(first))
            }
        }
        d.deserialize_seq(Elements)
    }
}

/// `(country, subdivision)`, or None for no answer.
type Answer = Option<(String, Option<String>)>;

/// `GeoIP._answer` of a record (None: no record).
fn answer_of(record: Option<Record<'_>>, is_city: bool) -> Answer {
    let record = record.filter(|r| !r.empty)?;
    // `record.get("country") or record.get("registered_country") or {}`: an empty map is passed over
    let named = [record.country, record.registered_country]
        .into_iter()
        .flatten()
        .find(|n| !n.empty)?;
    let country = named.iso_code.filter(|c| !c.is_empty())?;
    let subdivision = match &record.first_subdivision {
        Some(first) if country == "AU" && is_city => first.iso_code.map(str::to_owned),
        _ => None,
    };
    Some((country.to_owned(), subdivision))
}

/// One `.mmdb` file, memory-mapped as the Python reader maps it.
#[pyclass(frozen, module = "eventscan")]
pub(crate) struct GeoReader {
    reader: Reader<Mmap>,
    is_city: bool,
}

fn os_error(error: MaxMindDbError) -> PyErr {
    PyOSError::new_err(error.to_string())
}

#[pymethods]
impl GeoReader {
    #[new]
    fn new(path: &str, is_city: bool) -> PyResult<Self> {
        // SAFETY: the file is not changed while it is mapped (a new database replaces the file,
        // as `geoipupdate` does, rather than writing over it); the Python reader maps it too.
        let reader = unsafe { Reader::open_mmap(path) }.map_err(os_error)?;
        Ok(GeoReader { reader, is_city })
    }

    /// `(answer, prefix length)` for an address given as its 4 or 16 packed bytes, as
    /// `GeoIP._answer` of the Python reader's `get_with_prefix_len` gives them (the prefix
    /// length in the address's own bits); None where this reader cannot tell (an address of
    /// another length, an IPv6 address in an IPv4 database, an IPv4 address answered above the
    /// IPv4 part of the tree, a record it cannot read as a GeoIP one, any error): then ask the
    /// Python reader.
    fn find(&self, py: Python<'_>, packed: &[u8]) -> Option<(Answer, u8)> {
        let address = match packed.len() {
            4 => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(packed).ok()?)),
            16 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(packed).ok()?)),
            _ => return None,
        };
        py.allow_threads(|| {
            let found = self.reader.lookup(address).ok()?;
            let network = found.network().ok()?;
            if network.is_ipv4() != address.is_ipv4() {
                return None; // an IPv4 address answered above the IPv4 part of the tree
            }
            let prefix = network.prefix();
            let record = found.decode::<Record<'_>>().ok()?;
            Some((answer_of(record, self.is_city), prefix))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(iso_code: Option<&str>, empty: bool) -> Option<Named<'_>> {
        Some(Named { empty, iso_code })
    }

    #[test]
    fn an_empty_country_is_passed_over_as_python_passes_over_an_empty_dict() {
        let record = |country, registered| Record {
            empty: false,
            country,
            registered_country: registered,
            first_subdivision: named(Some("QLD"), false),
        };
        let nz = named(Some("NZ"), false);
        assert_eq!(
            answer_of(Some(record(named(None, true), nz)), true),
            Some(("NZ".to_owned(), None))
        );
        // a country that is not empty but has no code: no answer, not the registered country's
        assert_eq!(answer_of(Some(record(named(None, false), nz)), true), None);
        assert_eq!(
            answer_of(Some(record(named(Some("AU"), false), nz)), true),
            Some(("AU".to_owned(), Some("QLD".to_owned())))
        );
        assert_eq!(
            answer_of(Some(record(named(Some("AU"), false), nz)), false),
            Some(("AU".to_owned(), None))
        );
        let empty = Record {
            empty: true,
            country: None,
            registered_country: None,
            first_subdivision: None,
        };
        assert_eq!(answer_of(Some(empty), true), None);
        assert_eq!(answer_of(None, true), None);
    }
}

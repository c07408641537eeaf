//! The S3 protocol as data (SPEC.md §12.1): what every runtime's S3 helper sends, decided
//! once here. Like the rest of core it does no I/O: it says which request to make next and
//! takes the answer back.

mod copy;
pub mod gateway;
mod open;
mod read;

pub use copy::{CARRIED_HEADERS, Fields, Headers, Migration, ObjectRef, Request, Step, copy_steps, migrate_steps};
pub use open::{MAX_TABLE_LEN, ObjectOpen, Open, Opened, SidecarKind};
pub use read::{EMPTY_OBJECT_STATUS, FIRST_PART, WholeRead, first_part_number};

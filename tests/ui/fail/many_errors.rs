use datasync::prelude::*;

// Every problem is reported at once.
#[derive(DataSync)]
#[datasync(colection = "x", conflict = "mrege")]
pub struct Note {
    pub key: String,
    #[datasync(renam = "t")]
    pub title: String,
    pub _version: i64,
}

fn main() {}

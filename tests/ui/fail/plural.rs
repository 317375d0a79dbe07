use datasync::prelude::*;

#[derive(DataSync)]
#[datasync(plural = "Note")]
pub struct Note {
    pub id: String,
}

#[derive(DataSync)]
#[datasync(plural = "Memo Items")]
pub struct Memo {
    pub id: String,
}

fn main() {}

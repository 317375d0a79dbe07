use datasync::prelude::*;

#[derive(DataSync)]
pub struct Note {
    pub id: u64,
    pub title: String,
}

fn main() {}

use datasync::prelude::*;

#[derive(DataSync)]
pub struct Note {
    pub key: String,
    pub title: String,
}

fn main() {}

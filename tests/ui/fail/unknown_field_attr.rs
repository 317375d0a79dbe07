use datasync::prelude::*;

#[derive(DataSync)]
pub struct Note {
    pub id: String,
    #[datasync(searchable)]
    pub title: String,
}

fn main() {}

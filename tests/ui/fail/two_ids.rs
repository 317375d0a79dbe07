use datasync::prelude::*;

#[derive(DataSync)]
pub struct Note {
    #[datasync(id)]
    pub key: String,
    #[datasync(id)]
    pub other_key: String,
    pub title: String,
}

fn main() {}

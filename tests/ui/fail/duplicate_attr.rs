use datasync::prelude::*;

#[derive(DataSync)]
#[datasync(collection = "notes", collection = "more_notes")]
pub struct Note {
    pub id: String,
    #[datasync(skip_filter, skip_filter)]
    pub tags: Vec<String>,
}

fn main() {}

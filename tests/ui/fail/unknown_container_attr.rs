use datasync::prelude::*;

#[derive(DataSync)]
#[datasync(collecton = "notes")]
pub struct Note {
    pub id: String,
}

fn main() {}

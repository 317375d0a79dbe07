use datasync::prelude::*;

#[derive(DataSync)]
#[datasync(collection = "notes; DROP TABLE", plural = 5)]
pub struct Note {
    #[datasync(id = true)]
    pub id: String,
    #[datasync(rename = "1st")]
    pub first: String,
}

fn main() {}

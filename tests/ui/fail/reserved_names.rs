use datasync::prelude::*;

#[derive(DataSync)]
pub struct Note {
    pub id: String,
    pub _version: i64,
    pub _deleted: bool,
    pub created_at: String,
    #[datasync(rename = "updatedAt")]
    pub changed: String,
}

fn main() {}

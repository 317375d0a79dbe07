use datasync::prelude::*;

#[derive(DataSync)]
pub struct Note<T> {
    pub id: String,
    pub body: T,
}

fn main() {}

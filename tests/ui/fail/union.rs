use datasync::prelude::*;

#[derive(DataSync)]
pub union Note {
    id: u32,
}

fn main() {}

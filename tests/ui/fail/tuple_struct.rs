use datasync::prelude::*;

#[derive(DataSync)]
pub struct Note(String, String);

fn main() {}

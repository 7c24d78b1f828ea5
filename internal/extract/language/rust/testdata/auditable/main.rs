// The program cargo-auditable would have built, reduced to what the
// extractor reads: a Rust executable whose .dep-v0 section holds the
// zlib-compressed dependency list. cargo-auditable links an object file
// with that section; a #[used] static in the section is the same bytes in
// the same place. make-fixtures.sh compresses dep-v0.json into
// dep-v0.zlib and builds this file.

#[used]
#[link_section = ".dep-v0"]
static AUDITABLE_VERSION_INFO: [u8; include_bytes!("dep-v0.zlib").len()] =
    *include_bytes!("dep-v0.zlib");

fn main() {
    println!("hello, auditable");
}

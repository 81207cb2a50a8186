// The same check as the library's: whether the large reference fixtures are at hand.
include!("../inception/build.rs");

//! ONNX protobufs through the importer, and the imported graph's weights onto a network.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(m) = inception::weights::onnx::import(data, None) {
        // Only build networks of a sane size; the importer already bounds weights by the input.
        if m.graph.params().total() < 1_000_000 {
            let mut net = inception::Network::new(m.graph.clone(), &Default::default());
            let _ = inception::weights::load_into(&mut net, &m.weights, &Default::default());
        }
    }
});

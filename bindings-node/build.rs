//! Sets the linker flags a Node-API addon needs (symbols resolve from the host process).
fn main() {
    napi_build::setup();
}

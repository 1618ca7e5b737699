//! What `load_bytes` / `load_file` say about things that are not assay
//! plugins. These need no plugin fixtures except `old-contract`.

use assay_plugin_host::{ContractMismatch, HostConfig, LoadError, PluginHost};

fn host() -> PluginHost {
    PluginHost::new(HostConfig::default()).expect("host")
}

#[test]
fn empty_bytes_are_not_wasm() {
    let err = host().load_bytes(&[]).unwrap_err();
    assert!(matches!(err, LoadError::NotWasm { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "not a WebAssembly component (the file is empty)"
    );
}

#[test]
fn garbage_is_not_wasm() {
    let err = host()
        .load_bytes(b"#!/bin/sh\necho definitely not wasm\n")
        .unwrap_err();
    assert!(matches!(err, LoadError::NotWasm { .. }), "{err:?}");
    assert!(err.to_string().contains("magic bytes"), "{err}");
}

#[test]
fn wat_text_is_not_accepted_as_a_component() {
    let err = host().load_bytes(b"(component)").unwrap_err();
    assert!(matches!(err, LoadError::NotWasm { .. }), "{err:?}");
}

#[test]
fn core_module_is_not_a_component() {
    let module = wat::parse_str(r#"(module (func (export "score") (result f64) f64.const 1))"#)
        .expect("valid wat");
    let err = host().load_bytes(&module).unwrap_err();
    assert!(matches!(err, LoadError::NotAComponent), "{err:?}");
    assert_eq!(
        err.to_string(),
        "not a WebAssembly component (it is a core module; build with --target wasm32-wasip2)"
    );
}

#[test]
fn truncated_component_fails_to_compile() {
    let component = wrong_world_component();
    let err = host()
        .load_bytes(&component[..component.len() - 3])
        .unwrap_err();
    assert!(matches!(err, LoadError::Compile(_)), "{err:?}");
}

/// A valid component exporting an interface that is not an assay plugin.
fn wrong_world_component() -> Vec<u8> {
    wat::parse_str(
        r#"
        (component
          (core module $m (func (export "run") (result i32) i32.const 0))
          (core instance $i (instantiate $m))
          (func $run (result (result)) (canon lift (core func $i "run")))
          (instance $inst (export "run" (func $run)))
          (export "wasi:cli/run@0.2.0" (instance $inst))
        )
        "#,
    )
    .expect("valid wat")
}

#[test]
fn wrong_world_names_the_missing_and_found_exports() {
    let err = host().load_bytes(&wrong_world_component()).unwrap_err();
    match &err {
        LoadError::WrongWorld { found, .. } => assert_eq!(found, &["wasi:cli/run@0.2.0"]),
        other => panic!("expected WrongWorld, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "component does not export `assay:plugin/scorer@0.2.0` or `assay:plugin/target@0.2.0`; it exports: [wasi:cli/run@0.2.0]"
    );
}

#[test]
fn component_with_right_name_but_wrong_functions_is_wrong_world() {
    // Exports `assay:plugin/scorer@0.1.0` but with none of its functions.
    let bytes = wat::parse_str(
        r#"
        (component
          (core module $m (func (export "run") (result i32) i32.const 0))
          (core instance $i (instantiate $m))
          (func $run (result (result)) (canon lift (core func $i "run")))
          (instance $inst (export "run" (func $run)))
          (export "assay:plugin/scorer@0.1.0" (instance $inst))
        )
        "#,
    )
    .expect("valid wat");
    let err = host().load_bytes(&bytes).unwrap_err();
    assert!(matches!(err, LoadError::WrongWorld { .. }), "{err:?}");
    assert!(
        err.to_string().contains("assay:plugin/scorer@0.1.0"),
        "{err}"
    );
}

#[test]
fn old_contract_version_is_refused_naming_the_supported_range() {
    let path = assay_test_support::plugin_wasm("old-contract");
    let err = host().load_file(&path).unwrap_err();
    match &err {
        LoadError::IncompatibleContract {
            plugin,
            supported,
            mismatch,
        } => {
            assert_eq!(plugin, "0.0.1");
            assert_eq!(supported, "0.1.x and 0.2.x");
            assert_eq!(*mismatch, ContractMismatch::TooOld);
        }
        other => panic!("expected IncompatibleContract, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "plugin was built against assay:plugin contract 0.0.1, older than this host supports (0.1.x and 0.2.x): rebuild it with a current assay-plugin-sdk"
    );
}

/// A component whose scorer export is from a contract newer than the host.
#[test]
fn newer_contract_version_is_refused_naming_the_supported_range() {
    let bytes = wat::parse_str(
        r#"
        (component
          (core module $m (func (export "run") (result i32) i32.const 0))
          (core instance $i (instantiate $m))
          (func $run (result (result)) (canon lift (core func $i "run")))
          (instance $inst (export "run" (func $run)))
          (export "assay:plugin/scorer@0.3.0" (instance $inst))
        )
        "#,
    )
    .expect("valid wat");
    let err = host().load_bytes(&bytes).unwrap_err();
    assert!(
        matches!(
            &err,
            LoadError::IncompatibleContract {
                mismatch: ContractMismatch::TooNew,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "plugin was built against assay:plugin contract 0.3.0, newer than this host supports (0.1.x and 0.2.x): upgrade assay, or build the plugin with an SDK for 0.1.x and 0.2.x"
    );
}

#[test]
fn missing_file_is_an_io_error_naming_the_path() {
    let err = host()
        .load_file("no/such/plugin.wasm".as_ref())
        .unwrap_err();
    assert!(matches!(err, LoadError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("no/such/plugin.wasm"), "{err}");
}

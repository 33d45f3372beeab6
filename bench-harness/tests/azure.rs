//! The `azure-blobs` work against a real Azurite (started here; no mock): the account SAS that
//! the emulator's well-known key signs is accepted, a wrong key or an expired SAS is refused
//! with 403 and the error names the blob, and every way of downloading (the blocking task, the
//! async function, a plain GET of the blob's SAS URL as CPython does it) returns exactly the
//! bytes that were uploaded.
//!
//! Azurite comes from `node_modules` at the workspace root (`.ci/run` installs it there), else
//! the harness installs it with npm.

use std::time::Duration;

use bench_harness::azurite::Azurite;
use executor_core::Task;
use scenarios::azure::{
    AzureTarget, CONTAINER, EMULATOR_ACCOUNT, FetchAzureBlob, SharedKey, container_client,
    fetch_azure_blob, image_name, png_image, upload_images,
};
use scenarios::{Digest, RunEnv, Tally, Workload};

/// "not the emulator key", base64: a well-formed key Azurite does not know.
const WRONG_KEY: &str = "bm90IHRoZSBlbXVsYXRvciBrZXk=";

fn start() -> Azurite {
    Azurite::start().unwrap_or_else(|e| panic!("Azurite must start for these tests: {e}"))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn uploads_come_back_byte_for_byte_through_every_client() {
    let azurite = start();
    let target = AzureTarget::emulator(&azurite.blob_endpoint());
    let container = upload_images(&target, 3, 48, 40).unwrap();
    assert_eq!(container.blobs.len(), 3);
    for (i, blob) in container.blobs.iter().enumerate() {
        assert_eq!(blob.name, image_name(i as u64, 48, 40));
        assert_eq!(blob.digest, Digest::of(&png_image(i as u64, 48, 40)));
    }
    assert!(
        container
            .url
            .contains("/devstoreaccount1/bench-harness?sv=")
    );

    // The blocking task (threads, processes, serial), on a thread of its own.
    let tasks: Vec<FetchAzureBlob> = container.tasks().collect();
    let digests = std::thread::spawn(move || {
        tasks
            .into_iter()
            .map(|t| t.run().unwrap())
            .collect::<Vec<_>>()
    })
    .join()
    .unwrap();
    let uploaded: Vec<Digest> = container.blobs.iter().map(|b| b.digest).collect();
    assert_eq!(digests, uploaded);

    // The async function (the async backend), with one shared client.
    let rt = runtime();
    let client = container_client(&container.url).unwrap();
    for blob in &container.blobs {
        let got = rt.block_on(fetch_azure_blob(&client, &blob.name)).unwrap();
        assert_eq!(got, blob.digest, "{}", blob.name);
    }

    // A plain GET of the blob's SAS URL, as CPython's rows do: the SAS is the authentication.
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    for (task, blob) in container.tasks().zip(&container.blobs) {
        let body = rt
            .block_on(async { http.get(task.blob_url()).send().await?.bytes().await })
            .unwrap();
        assert_eq!(Digest::of(&body), blob.digest, "{}", blob.name);
    }

    // Uploading again (a second run against the same account) overwrites the same blobs.
    let again = upload_images(&target, 3, 48, 40).unwrap();
    assert_eq!(again.blobs, container.blobs);

    // What the check does after the clock stops.
    let env = RunEnv::new(None).with_azure(container.clone());
    let w = Workload::AzureBlobs {
        images: 3,
        width: 48,
        height: 40,
    };
    let items: Vec<_> = digests
        .into_iter()
        .map(|d| Ok(scenarios::Output::Digest(d)))
        .collect();
    let tally = Tally::of_in(&w, &items, &env);
    assert_eq!(tally.ok, 3);
    assert_eq!(
        tally.verified_bytes,
        uploaded.iter().map(|d| d.len).sum::<u64>()
    );
}

#[test]
fn a_sas_signed_with_a_wrong_key_is_refused_with_403_naming_the_blob() {
    let azurite = start();
    let target = AzureTarget::emulator(&azurite.blob_endpoint());
    let container = upload_images(&target, 1, 16, 16).unwrap();
    let blob = container.blobs[0].name.clone();

    let wrong = SharedKey::new(EMULATOR_ACCOUNT, WRONG_KEY).unwrap();
    let sas = wrong.account_sas(Duration::from_secs(3600));
    let signature = sas.rsplit_once("sig=").unwrap().1.to_string();
    let url = format!("{}/{CONTAINER}?{sas}", azurite.blob_endpoint());
    let e = FetchAzureBlob {
        container_url: url.clone(),
        blob: blob.clone(),
    }
    .run()
    .unwrap_err();
    let message = e.message();
    assert!(message.contains(&format!("blob `{blob}`")), "{e}");
    assert!(message.contains("HTTP 403"), "{e}");
    assert!(message.contains("AuthorizationFailure"), "{e}");
    assert!(!message.contains(&signature), "the SAS leaks: {e}");

    // The async path says the same.
    let client = container_client(&url).unwrap();
    let e = runtime()
        .block_on(fetch_azure_blob(&client, &blob))
        .unwrap_err();
    assert!(
        e.message().contains(&format!("blob `{blob}`")) && e.message().contains("HTTP 403"),
        "{e}"
    );

    // Nor can a wrong key upload: the set-up fails naming the blob and the status.
    let bad = AzureTarget::Account {
        blob_endpoint: azurite.blob_endpoint(),
        sas,
        container: CONTAINER.into(),
    };
    let e = upload_images(&bad, 1, 16, 16).unwrap_err();
    assert!(e.contains("403"), "{e}");

    // The right key, but expired: refused as well.
    let expired = SharedKey::emulator().account_sas_until("2000-01-01T00:00:00Z");
    let e = FetchAzureBlob {
        container_url: format!("{}/{CONTAINER}?{expired}", azurite.blob_endpoint()),
        blob: blob.clone(),
    }
    .run()
    .unwrap_err();
    assert!(e.message().contains("HTTP 403"), "{e}");

    // And the right key still works (the refusals above were about the keys).
    let digest = container.tasks().next().unwrap().run().unwrap();
    assert_eq!(digest, container.blobs[0].digest);
}

#[test]
fn a_missing_blob_is_404_naming_it() {
    let azurite = start();
    let target = AzureTarget::emulator(&azurite.blob_endpoint());
    let container = upload_images(&target, 1, 8, 8).unwrap();
    let e = FetchAzureBlob {
        container_url: container.url.clone(),
        blob: "no-such-image.png".into(),
    }
    .run()
    .unwrap_err();
    assert!(
        e.message().contains("blob `no-such-image.png`") && e.message().contains("HTTP 404"),
        "{e}"
    );
    assert!(e.message().contains("BlobNotFound"), "{e}");
}

/// The path a real storage account takes: the harness is given a container SAS URL in the
/// environment (here one for a container in an Azurite this test started, signed with the
/// emulator's key), starts no Azurite of its own, and loads and verifies the images there.
#[test]
fn a_container_sas_url_in_the_environment_is_used_instead_of_a_fresh_azurite() {
    let azurite = start();
    // The container must exist for a container SAS; create it through the account.
    let target = AzureTarget::emulator(&azurite.blob_endpoint());
    upload_images(&target, 1, 8, 8).unwrap();
    let sas = SharedKey::emulator().account_sas(Duration::from_secs(3600));
    let url = format!("{}/{CONTAINER}?{sas}", azurite.blob_endpoint());
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bench-harness"))
        .args([
            "run",
            "azure-blobs",
            "--quick",
            "--no-cpython",
            "--backend",
            "serial,threads,process,async",
            "--out",
            "res",
        ])
        .env("BENCH_AZURE_CONTAINER_SAS_URL", &url)
        .env_remove("AZURE_STORAGE_CONNECTION_STRING")
        // Were the harness to start its own Azurite, this would make it fail.
        .env(
            bench_harness::azurite::AZURITE_BIN_ENV,
            "/nonexistent/azurite-blob",
        )
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "container {}/{CONTAINER}",
            azurite.blob_endpoint()
        )),
        "{stderr}"
    );
    assert!(
        !stderr.contains("sig="),
        "the signature is never printed: {stderr}"
    );
    let records = bench_harness::report::read_jsonl(&dir.path().join("res/results.jsonl")).unwrap();
    assert_eq!(records.len(), 4);
    assert!(records.iter().all(|r| r.check_passed()), "{records:?}");
}

//! "Put me into a photo" in headless Chromium (the CPU fallback) against `consistentid serve` on
//! the tiny models: the face and the photo uploaded, the photo analysed in the browser and its
//! facial regions proposed as the mask over it, an eraser stroke taking from the mask and a
//! brush stroke adding to it, Generate, and the before/after slider over the result, which has the
//! photo's size. Screenshots under the target dir (web-into/).

use std::path::Path;
use std::time::{Duration, Instant};

use consistentid_tests::browser::{Driver, Host, browser};
use consistentid_tests::page::{
    attr, choose_photo, click, dist, model_folder, set, shot, small_settings, wait_text,
};
use consistentid_tests::real_data;
use fantoccini::{Client, Locator};

/// The mask's painted pixels, as the canvas reports them.
async fn painted(client: &Client) -> usize {
    attr(client, "#mask-canvas", "data-masked")
        .await
        .parse()
        .unwrap_or(0)
}

/// A pointer stroke across the canvas between two points (shares of its width and height).
async fn stroke(client: &Client, from: (f64, f64), to: (f64, f64)) {
    let script = "const [x0, y0, x1, y1] = arguments; const c = document.querySelector('#mask-canvas');
        const r = c.getBoundingClientRect();
        const at = (t, x, y) => c.dispatchEvent(new PointerEvent(t, { clientX: r.left + x * r.width,
            clientY: r.top + y * r.height, bubbles: true, pointerId: 1 }));
        at('pointerdown', x0, y0);
        for (let i = 1; i <= 8; i++) at('pointermove', x0 + (x1 - x0) * i / 8, y0 + (y1 - y0) * i / 8);
        at('pointerup', x1, y1);";
    client
        .execute(
            script,
            vec![from.0.into(), from.1.into(), to.0.into(), to.1.into()],
        )
        .await
        .unwrap();
}

/// Waits until `f` holds of the painted count (bounded); the count.
async fn wait_painted(client: &Client, f: impl Fn(usize) -> bool) -> usize {
    let start = Instant::now();
    loop {
        let n = painted(client).await;
        if f(n) {
            return n;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "painted {n}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An image element's natural size, once loaded.
async fn natural_size(client: &Client, css: &str) -> (u64, u64) {
    let start = Instant::now();
    loop {
        let v = client
            .execute(
                "const i = document.querySelector(arguments[0]); return i && i.complete && i.naturalWidth ? [i.naturalWidth, i.naturalHeight] : null",
                vec![css.into()],
            )
            .await
            .unwrap();
        if let Some(a) = v.as_array() {
            return (a[0].as_u64().unwrap(), a[1].as_u64().unwrap());
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{css} never loaded"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn put_me_into_a_photo() {
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("web-into");
    let tmp = tempfile::tempdir().unwrap();
    let model = model_folder(tmp.path());
    let host = Host::start(&model, &tmp.path().join("data"), &dist());
    let driver = Driver::start();
    let client = browser(&driver, &tmp.path().join("profile"), false).await;

    choose_photo(&client, &host.1, &real_data("images/astronaut.png")).await;
    wait_text(&client, "#status", 240, |s| s.contains("is ready")).await;
    click(&client, "#mode-into").await;
    let input = client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("#target-input"))
        .await
        .unwrap();
    let photo = real_data("images/grace_hopper.jpg");
    input.send_keys(photo.to_str().unwrap()).await.unwrap();
    wait_text(&client, "#target-status", 240, |s| s.contains("is ready")).await;
    let proposed = painted(&client).await;
    shot(&client, &shots, "1-mask-proposed").await;

    // The eraser takes from the mask, the brush adds to it (the tiny BiSeNet's random weights
    // propose most of the photo).
    assert!(proposed > 0, "a mask is proposed");
    click(&client, "#eraser").await;
    stroke(&client, (0.1, 0.1), (0.4, 0.2)).await;
    let erased = wait_painted(&client, |n| n < proposed).await;
    click(&client, "#brush").await;
    stroke(&client, (0.1, 0.1), (0.25, 0.15)).await;
    wait_painted(&client, |n| n > erased).await;
    shot(&client, &shots, "2-mask-edited").await;

    set(&client, "#prompt", "a portrait").await;
    small_settings(&client, "2", "32", "32").await;
    click(&client, "#generate").await;
    wait_text(&client, "#pstatus", 240, |t| t == "Done.").await;
    client
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css("#compare-slider"))
        .await
        .unwrap();
    // The result has the photo's size (the browser sent its decoded pixels, 512×600).
    assert_eq!(natural_size(&client, "#compare-after").await, (512, 600));
    assert_eq!(natural_size(&client, "#compare-before").await, (512, 600));
    client
        .execute(
            "const s = document.querySelector('#compare-slider'); s.value = 20; s.dispatchEvent(new Event('input', { bubbles: true }));",
            vec![],
        )
        .await
        .unwrap();
    let style = attr(&client, "#compare-before", "style").await;
    assert!(style.contains("inset(0 80%"), "{style}");
    shot(&client, &shots, "3-before-after").await;
}

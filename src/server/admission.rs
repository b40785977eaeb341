//! One admission review, from body bytes to response bytes:
//! decode -> pick what to analyse -> engine -> planner -> decision -> encode, with one log
//! line and the metrics.

use crate::engine::evaluate::EvalContext;
use crate::engine::evaluate::{ImageConfig, NativeSidecarSupport, Words};
use crate::engine::image_files::{ImageFiles, WantedFile};
use crate::engine::json_pointer;
use crate::engine::mounted_scripts::{ConfigMaps, MAX_CHAIN};
use crate::engine::workload::{
    Annotations, MIRROR_POD_ANNOTATION, controller_of, is_mirror_pod, template_pointer,
};
use crate::engine::{Evaluation, Mode};
use crate::resolve::MAX_ROUNDS;
use crate::server::config_maps::{self, Gathered};
use crate::server::decision::{self, Decision, Endpoint, FixSite};
use crate::server::lean_scan;
use crate::server::object::{Cut, Full, FullWithoutEnv, Lean, LeanWithoutEnv};
use crate::server::object_limits;
use crate::server::plan::{independent_of_env, mutation_types, within_cut};
use crate::server::pod_read::PodRead;
use crate::server::resolve::{KnownOnly, Parsing, Resolution, Shed};
use crate::server::review::{self, AdmissionRequest, AdmissionResponse, DecodeError};
use crate::server::review_cuts::Cuts;
use crate::server::review_log::findings_json;
use crate::server::state::App;
use crate::server::template_compare;
use bumpalo::Bump;
use serde_json::Value;
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::time::Instant;

/// What the HTTP layer sends back.
#[derive(Debug)]
pub enum Reply {
    /// 200 with an AdmissionReview.
    Review(Vec<u8>),
    /// A plain-text HTTP error (the body was not JSON at all, or the response could not be
    /// encoded).
    Plain(u16, &'static str),
    /// Not answered in time: 429 with `Retry-After`, which the apiserver retries.
    Shed,
}

/// Answers one review where blocking is allowed (a blocking-pool thread, or a thread outside
/// the runtime): scripts are parsed in this thread, under the ticket the caller set.
pub fn answer(
    app: &App,
    endpoint: Endpoint,
    path_mode: Option<Mode>,
    body: &[u8],
    started: Instant,
) -> Reply {
    let review = answer_with(app, endpoint, path_mode, body, started, &Parsing::Here);
    let finished = match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle.block_on(review),
        // Outside any runtime (benchmarks, fuzzing): one small runtime per thread, kept.
        Err(_) => OWN_RUNTIME.with(|runtime| match runtime {
            Some(runtime) => runtime.block_on(review),
            None => Ok(Reply::Plain(500, "pidone failed to analyse the request\n")),
        }),
    };
    finished.unwrap_or(Reply::Shed)
}

thread_local! {
    static OWN_RUNTIME: Option<tokio::runtime::Runtime> =
        tokio::runtime::Builder::new_current_thread().enable_all().build().ok();
}

/// Answers one review: decode, resolve what the evaluation needs (images, ConfigMaps, image
/// files, script verdicts: see [`Parsing`] for where parses run), evaluate, plan, decide.
/// `Err(Shed)` when it cannot be answered in time (429).
pub async fn answer_with(
    app: &App,
    endpoint: Endpoint,
    path_mode: Option<Mode>,
    body: &[u8],
    started: Instant,
    parsing: &Parsing,
) -> Result<Reply, Shed> {
    // Evaluation reads the lean cut: first without the containers' env lists (most of a
    // pod's decoding, rarely read), and again with them for a review whose evaluation reads
    // them. On a CREATE each lean cut is read straight from the body when it can be (see
    // `lean_scan`): neither a copy of the body cut nor a second pass over it; a Pod's object
    // is read straight into the engine's workload, without the cut (see `pod_read`).
    //
    // /mutate also plans patches. A patch that only rewrites scripts is planned on the lean
    // cut (`plan::within_cut` says when that is the whole object's patch); any other is
    // planned on the whole object, decoded then. A review the lean scan cannot read decodes
    // the whole object at once and evaluates that: first without the env lists when it has
    // some, and again with them when the evaluation or the patch depends on them.
    //
    // Every cut decoded by serde_json is decoded from the body without the values found by
    // one scan of it (see `review_cuts`): the object's managed fields always, and the env
    // lists on the first try; the body as sent is decoded only to word an error.
    //
    // An UPDATE of a workload is analysed only when its pod template changed: compared by
    // the bytes the apiserver wrote first (`template_compare`), decoded when they differ,
    // and once per review whatever the number of decodings (`Earlier`).
    let mut cuts: Option<Cuts> = None;
    let answering = Answering {
        app,
        endpoint,
        path_mode,
        started,
        parsing,
        earlier: Earlier::default(),
    };
    let first = match endpoint {
        Endpoint::Validate => match answer_scanned::<LeanWithoutEnv>(&answering, body).await? {
            FromScan::Answered(reply) => reply,
            FromScan::NotRead => {
                let decoded = cuts.insert(Cuts::of(body)).without_all(body);
                let bodies = Bodies {
                    sent: body,
                    decoded: &decoded,
                };
                answer_cut::<LeanWithoutEnv>(&answering, bodies).await?
            }
        },
        Endpoint::Mutate => match answer_scanned::<LeanWithoutEnv>(&answering, body).await? {
            FromScan::Answered(reply) => reply,
            FromScan::NotRead => match cuts.insert(Cuts::of(body)) {
                found if found.has_env() => {
                    let decoded = found.without_all(body);
                    let bodies = Bodies {
                        sent: body,
                        decoded: &decoded,
                    };
                    answer_cut::<FullWithoutEnv>(&answering, bodies).await?
                }
                _ => None,
            },
        },
    };
    if let Some(reply) = first {
        return Ok(reply);
    }
    if let FromScan::Answered(reply) = answer_scanned::<Lean>(&answering, body).await? {
        return reply.ok_or(Shed);
    }
    let decoded = cuts
        .get_or_insert_with(|| Cuts::of(body))
        .without_managed_fields(body);
    let bodies = Bodies {
        sent: body,
        decoded: &decoded,
    };
    let answered = match endpoint {
        Endpoint::Validate => answer_cut::<Lean>(&answering, bodies).await?,
        Endpoint::Mutate => answer_cut::<Full>(&answering, bodies).await?,
    };
    // Only a cut without env asks for another decoding.
    answered.ok_or(Shed)
}

/// What [`answer_scanned`] did.
enum FromScan {
    /// The review was read from the body and answered: as [`answer_cut`] answers.
    Answered(Option<Reply>),
    /// It could not be read that way: decode it.
    NotRead,
}

/// A review's body as sent, and as decoded (without the object's managed fields).
#[derive(Clone, Copy)]
struct Bodies<'a> {
    sent: &'a [u8],
    decoded: &'a [u8],
}

/// The body the whole object is decoded from, when the cut is not the whole object: the one
/// the request was decoded from, or the body as sent; and whether its env lists are as sent
/// (a cut without env decoded from a body whose env lists were cut to `[]` has them not).
#[derive(Clone, Copy)]
struct WholeFrom<'a> {
    body: &'a [u8],
    has_env: bool,
}

/// One review being answered: what every decoding of it shares.
struct Answering<'a> {
    app: &'a App,
    endpoint: Endpoint,
    path_mode: Option<Mode>,
    started: Instant,
    parsing: &'a Parsing,
    earlier: Earlier,
}

/// What an earlier decoding of the same review found, for the next one (a cut without env
/// lists, then with them): whether an UPDATE changed the pod template.
#[derive(Default)]
struct Earlier {
    template_changed: std::sync::OnceLock<bool>,
}

/// Why a review's decision stopped before it was made.
enum Stop {
    /// Not in time: shed (429).
    Shed,
    /// The decision depends on a container's `env`, which the cut may have left out: the
    /// evaluation or the planner's re-checks read it, or the patch writes it.
    WithEnv,
    /// A Pod read straight into its workload needs more of its object than the workload
    /// holds (ConfigMaps to gather, a plan that reshapes the pod): read it into a lean cut.
    NeedsObject,
}

impl From<Shed> for Stop {
    fn from(_: Shed) -> Stop {
        Stop::Shed
    }
}

/// The answer to a review decoded with the cut `C`; `None` when `C` left out the containers'
/// `env` and the review must be decoded with it (its evaluation reads it, or the env lists
/// have a shape the engine reports, or the body does not decode at all: the lean cut says
/// why).
async fn answer_cut<C: Cut>(
    answering: &Answering<'_>,
    bodies: Bodies<'_>,
) -> Result<Option<Reply>, Shed> {
    let (app, endpoint, started) = (answering.app, answering.endpoint, answering.started);
    let (decoded, body) = match review::decode_cut::<C>(bodies.decoded) {
        Ok(r) => (Ok(r), bodies.decoded),
        Err(_) if !C::ENV => return Ok(None),
        // Nothing was cut: this is the body as sent, and its error.
        Err(e) if std::ptr::eq(bodies.sent, bodies.decoded) => (Err(e), bodies.sent),
        // The body as sent: an error is worded with its own positions, and should the cut
        // body ever fail where the whole one decodes, the review goes on from the whole one.
        Err(_) => (review::decode_cut::<C>(bodies.sent), bodies.sent),
    };
    let mut request = match decoded {
        Ok(r) => r,
        Err(DecodeError::NotJson) => {
            app.metrics
                .request(endpoint.as_str(), "", "", "rejected", started.elapsed());
            tracing::warn!(endpoint = endpoint.as_str(), "request body is not JSON");
            return Ok(Some(Reply::Plain(400, "the request body is not JSON\n")));
        }
        Err(DecodeError::Invalid { uid, message }) => {
            let decision = Decision::invalid_review(&message);
            app.metrics.request(
                endpoint.as_str(),
                "",
                "",
                decision.outcome.as_str(),
                started.elapsed(),
            );
            tracing::warn!(
                uid,
                endpoint = endpoint.as_str(),
                error = message,
                result = decision.outcome.as_str(),
                duration_us = started.elapsed().as_micros() as u64,
                "invalid admission review"
            );
            return Ok(Some(respond(&uid, &decision)));
        }
    };
    let whole_from = WholeFrom {
        body,
        has_env: C::ENV || std::ptr::eq(body, bodies.sent),
    };
    match answer_request(answering, &mut request, whole_from, None).await {
        Ok(reply) => Ok(reply),
        Err(Stop::Shed) => Err(Shed),
        // Only a Pod read without its object asks for it.
        Err(Stop::WithEnv | Stop::NeedsObject) => Ok(None),
    }
}

/// [`answer_cut`] for a CREATE whose object [`lean_scan`] reads from the body in cut `C`;
/// [`FromScan::NotRead`] when it cannot (see there), or the rest of the review does not decode.
async fn answer_scanned<C: Cut>(answering: &Answering<'_>, body: &[u8]) -> Result<FromScan, Shed> {
    let whole_from = WholeFrom {
        body,
        has_env: true,
    };
    // A Pod is read straight into its workload (see `pod_read`) when it can be, and into the
    // lean cut when it cannot or its decision needs more of it.
    let texts = Bump::new();
    if let Some((mut request, pod)) = lean_scan::scan_pod::<C>(body, &texts) {
        match answer_request(answering, &mut request, whole_from, Some(&pod)).await {
            Ok(reply) => return Ok(FromScan::Answered(reply)),
            Err(Stop::Shed) => return Err(Shed),
            Err(Stop::WithEnv) => return Ok(FromScan::Answered(None)),
            Err(Stop::NeedsObject) => {}
        }
    }
    let Some(mut request) = lean_scan::scan::<C>(body) else {
        return Ok(FromScan::NotRead);
    };
    match answer_request(answering, &mut request, whole_from, None).await {
        Ok(reply) => Ok(FromScan::Answered(reply)),
        Err(Stop::Shed) => Err(Shed),
        Err(Stop::WithEnv | Stop::NeedsObject) => Ok(FromScan::Answered(None)),
    }
}

/// The answer to a decoded request (see [`answer_cut`]).
async fn answer_request<C: Cut>(
    answering: &Answering<'_>,
    request: &mut AdmissionRequest<'_, C>,
    whole_from: WholeFrom<'_>,
    pod: Option<&PodRead<'_>>,
) -> Result<Option<Reply>, Stop> {
    let Answering {
        app,
        endpoint,
        path_mode,
        started,
        parsing,
        earlier,
    } = answering;
    let (endpoint, path_mode, started) = (*endpoint, *path_mode, *started);
    // The parse workers share themselves fairly between namespaces.
    crate::sandbox::ticket::set_namespace(request.namespace().unwrap_or(""));
    let engine = app.engine_arc();
    let mode = path_mode.unwrap_or(engine.config().mode);
    let site = fix_site(engine.config(), &request.kind.kind, &request.operation);
    let mut name = request.name().to_string();
    let mut resolution = Resolution {
        namespace: request.namespace().unwrap_or("").to_string(),
        ..Resolution::default()
    };
    // Owned apart from the request: the planner's patch is checked on it, without a copy.
    let mut object = request.object.take();
    let decided = decide(
        app,
        &engine,
        endpoint,
        mode,
        site,
        request,
        &mut object,
        whole_from,
        parsing,
        &mut resolution,
        earlier,
        pod,
    )
    .await;
    let (decision, eval) = match decided {
        Ok(decided) => decided,
        Err(Stop::WithEnv) => return Ok(None),
        Err(stop) => return Err(stop),
    };
    if resolution.pool_gave_up && engine.config().parser.fail_closed {
        app.metrics.shed();
        tracing::warn!(
            endpoint = endpoint.as_str(),
            "parse workers busy: review shed with 429 (parser.failClosed)"
        );
        return Err(Stop::Shed);
    }
    if name.is_empty()
        && let Some(e) = &eval
    {
        name.clone_from(&e.object.name);
    }

    let elapsed = started.elapsed();
    app.metrics.request(
        endpoint.as_str(),
        &request.kind.kind,
        &request.operation,
        decision.outcome.as_str(),
        elapsed,
    );
    // The findings this endpoint reports (none in mode off), counted and written into the
    // review's one log line.
    let reported = eval
        .iter()
        .flat_map(|e| e.findings.iter())
        .filter(|f| mode != Mode::Off && endpoint.owns(f.action, site));
    for f in reported.clone() {
        app.metrics.finding(f.rule, f.action, mode);
    }
    let ignored = match &eval {
        Some(e) if endpoint == Endpoint::Validate && !e.ignored.is_empty() => e
            .ignored
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(","),
        _ => String::new(),
    };
    for kind in mutation_types(&decision.patch) {
        app.metrics.mutation(&kind);
    }
    // `&str` fields, not `%` (Display) ones: tracing's formatters write a `&str` as it is
    // and format a Display one into a string first.
    tracing::info!(
        uid = request.uid.as_ref(),
        endpoint = endpoint.as_str(),
        mode = mode.as_str(),
        kind = request.kind.kind.as_ref(),
        namespace = request.namespace().unwrap_or(""),
        name,
        operation = request.operation.as_ref(),
        dry_run = request.dry_run(),
        result = decision.outcome.as_str(),
        duration_us = elapsed.as_micros() as u64,
        findings = findings_json(reported).as_str(),
        ignored,
        "admission review"
    );
    Ok(Some(respond(&request.uid, &decision)))
}

/// Where the fixes for a request's object land (DESIGN section 5.1): Pods are patched; an
/// ownerless workload only on CREATE and with `mutations.workloads: true` (a patched template
/// is drift for GitOps tools); otherwise its Pods are fixed when they are created.
fn fix_site(config: &crate::engine::Config, kind: &str, operation: &str) -> FixSite {
    if kind == "Pod" || (config.mutations.workloads && operation == "CREATE") {
        FixSite::Here
    } else {
        FixSite::Pods
    }
}

/// The decision for a decoded request, with the evaluation when there was one. `request`
/// carries the object in cut `C` (the lean one is all evaluation reads); when `C` is not the
/// whole object, the whole object is decoded again from `whole_from`, only to compare pod
/// templates on UPDATE and to plan a patch the lean cut cannot.
#[allow(clippy::too_many_arguments)]
async fn decide<C: Cut>(
    app: &App,
    engine: &crate::engine::Engine,
    endpoint: Endpoint,
    mode: Mode,
    site: FixSite,
    request: &AdmissionRequest<'_, C>,
    request_object: &mut Option<Value>,
    whole_from: WholeFrom<'_>,
    parsing: &Parsing,
    resolution: &mut Resolution,
    earlier: &Earlier,
    pod: Option<&PodRead<'_>>,
) -> Result<(Decision, Option<Evaluation>), Stop> {
    if mode == Mode::Off || request.sub_resource().is_some() {
        return Ok((Decision::allow(), None));
    }
    let Some(pointer) = template_pointer(&request.kind.kind) else {
        return Ok((Decision::allow(), None));
    };
    // A ReplicaSet of a Deployment, a Job of a CronJob, a StatefulSet of an operator: its
    // controller compares it with its own template, so pidone neither patches nor denies it.
    // Pods are the exception: that is where fixes land, whoever created them.
    if request.kind.kind != "Pod"
        && let Some(controller) = request_object.as_ref().and_then(controller_of)
    {
        return Ok((Decision::controlled(&controller.to_string()), None));
    }
    let mirror = match pod {
        Some(pod) => pod.workload.annotations.contains(MIRROR_POD_ANNOTATION),
        None => request_object.as_ref().is_some_and(is_mirror_pod),
    };
    if request.kind.kind == "Pod" && mirror {
        return Ok((Decision::mirror_pod(), None));
    }
    match request.operation.as_ref() {
        "CREATE" => {}
        // Container fields of a Pod are immutable; workloads are analysed when their pod
        // template changed (any field of it).
        "UPDATE" if request.kind.kind != "Pod" => {
            // Env lists are cut from CREATE reviews only; were this one's, the templates
            // would not compare.
            if !C::ENV && C::WHOLE {
                return Err(Stop::WithEnv);
            }
            // Compared once per review: a second decoding (with env lists) knows.
            if earlier.template_changed.get().is_none() {
                // Most UPDATEs leave the template as it was, the same bytes in both objects.
                let old_text = request.old_object.map(|o| o.get().as_bytes());
                if old_text
                    .is_some_and(|old| template_compare::unchanged(whole_from.body, old, pointer))
                {
                    return Ok((Decision::allow(), None));
                }
                if let Some(decision) = compare_decoded::<C>(
                    request,
                    request_object.as_ref(),
                    whole_from,
                    pointer,
                    mode,
                ) {
                    return Ok((decision, None));
                }
                let _ = earlier.template_changed.set(true);
            }
        }
        _ => return Ok((Decision::allow(), None)),
    }
    // Bounded work per object: measured in one pass, before look-ups, analysis or planning.
    let over_limits = |size| {
        let over = object_limits::check(size, &engine.config().limits)?;
        if endpoint == Endpoint::Validate {
            app.metrics.limits.limit_hit(over.limit);
        }
        Some(over_limit(endpoint, mode, &over.message))
    };
    // Extracted once for the rounds of look-ups and the evaluation (a Pod read straight into
    // its workload has it already).
    let (object, workload) = match pod {
        Some(pod) => {
            if let Some(over) = over_limits(object_limits::of_workload(&pod.workload)) {
                return Ok((over, None));
            }
            (None, pod.workload.view())
        }
        None => {
            let object = match checked(request_object.as_ref(), "request.object") {
                Ok(o) => o,
                Err(e) => return Ok((Decision::malformed_object(mode, &e), None)),
            };
            if let Some(over) = over_limits(object_limits::measure(object, pointer)) {
                return Ok((over, None));
            }
            match crate::engine::workload::extract(object) {
                Ok(Some(w)) => (Some(object), w),
                Ok(None) => return Ok((Decision::allow(), None)),
                Err(e) => return Ok((Decision::malformed_object(mode, &e.to_string()), None)),
            }
        }
    };
    let deadline = match parsing {
        Parsing::Pool { deadline, .. } => Some(*deadline),
        Parsing::Here => crate::sandbox::ticket::current().map(|t| t.deadline()),
    };

    // What the evaluation reads from elsewhere, stage by stage as the engine asks for it
    // (`Engine::needs`): image configs (containers without a command run their image's
    // ENTRYPOINT), ConfigMaps (scripts containers run from ConfigMap volumes), then the
    // scripts the launches run and the files of images they run (round after round along a
    // chain of scripts, within `images.scripts.deadline` in all; a ConfigMap mounted over a
    // path hides the image's file). A look-up that fails or times out leaves the launch as
    // written, with a note; it never denies.
    let config = engine.config();
    let scope = crate::images::Scope::Namespace(request.namespace().unwrap_or(""));
    let resolver = app.image_resolver(&config.images);
    let mut lean_object: Option<Option<Value>> = None;
    let mut notes = Vec::new();
    let mut input_notes = Vec::new();
    let mut images: Option<HashMap<String, ImageConfig>> = None;
    let mut config_maps: Option<ConfigMaps> = None;
    let mut image_files = resolver
        .as_ref()
        .filter(|_| config.images.scripts.read)
        .map(|_| ImageFiles::default());
    let mut files_tried: Vec<WantedFile> = Vec::new();
    let files_until = Instant::now() + config.images.scripts.deadline;
    let native_sidecars = app.native_sidecars(config);
    let words = endpoint.words();
    fn context<'c>(
        namespace: Option<&'c str>,
        native_sidecars: &NativeSidecarSupport,
        images: Option<&'c HashMap<String, ImageConfig>>,
        config_maps: Option<&'c ConfigMaps>,
        image_files: Option<&'c ImageFiles>,
        words: Words,
    ) -> EvalContext<'c> {
        EvalContext {
            namespace,
            native_sidecars: native_sidecars.clone(),
            images,
            config_maps,
            image_files,
            scripts: None,
            words,
        }
    }
    // The launches the last walk finished, when nothing it read changed since (the loop ends
    // on a round that read no file): the evaluation takes them.
    let mut finished = None;
    for _ in 0..MAX_ROUNDS {
        let (needs, launches) = engine.needs_and_launches(
            &workload,
            &EvalContext {
                scripts: Some(&resolution.verdicts),
                ..context(
                    request.namespace(),
                    &native_sidecars,
                    images.as_ref(),
                    config_maps.as_ref(),
                    image_files.as_ref(),
                    words,
                )
            },
        );
        // The scripts it names are as the environment made them.
        if !C::ENV && needs.env_read {
            return Err(Stop::WithEnv);
        }
        if !needs.images.is_empty() {
            let found = match &resolver {
                // A pod's look-ups use only the credentials its namespace may use.
                Some(resolver) => {
                    let (found, warnings) = resolver
                        .resolve_all_for(
                            needs.images.iter().map(String::as_str),
                            config.images.deadline,
                            scope,
                        )
                        .await;
                    notes.extend(warnings.into_iter().map(|w| w.to_string()));
                    found
                }
                None => HashMap::new(),
            };
            images = Some(found);
            continue;
        }
        if !needs.config_maps.is_empty() {
            // Gathered from the object: a Pod read straight into its workload has its lean
            // cut read now.
            let object = match object {
                Some(object) => object,
                None => match lean_object
                    .insert(lean_scan::scan::<C>(whole_from.body).and_then(|r| r.object))
                {
                    Some(object) => &*object,
                    None => return Err(Stop::NeedsObject),
                },
            };
            let namespace = request.namespace().or_else(|| {
                json_pointer::get(object, "/metadata/namespace").and_then(Value::as_str)
            });
            config_maps = Some(
                match config_maps::gather(app, config, object, namespace, images.as_ref(), deadline)
                    .await
                {
                    Gathered::Nothing => ConfigMaps::default(),
                    Gathered::Read { maps, notes } => {
                        input_notes = notes;
                        maps
                    }
                },
            );
            continue;
        }
        let mut wanted = needs.image_files;
        wanted.retain(|w| !files_tried.contains(w));
        let left = files_until.saturating_duration_since(Instant::now());
        let read_files = match (&resolver, &mut image_files) {
            (Some(resolver), Some(files)) if !wanted.is_empty() && !left.is_zero() => {
                for (w, file) in resolver.read_files(&wanted, left, scope).await {
                    files.insert(&w.image, &w.path, file);
                }
                files_tried.extend(wanted);
                true
            }
            _ => false,
        };
        let resolved_scripts = !needs.scripts.is_empty();
        resolution.resolve(app, needs.scripts, parsing).await?;
        // Files just read may run further scripts or files, and with image files on, a
        // verdict may name a further file: ask again. Otherwise the evaluation names any
        // script a verdict revealed (no walk of the launches only to find none).
        let ask_again = read_files || (resolved_scripts && image_files.is_some());
        if !ask_again {
            finished = Some(launches);
            break;
        }
    }
    let ctx = context(
        request.namespace(),
        &native_sidecars,
        images.as_ref(),
        config_maps.as_ref(),
        image_files.as_ref(),
        words,
    );
    let mut rounds = 0;
    let eval = loop {
        let with = EvalContext {
            scripts: Some(&resolution.verdicts),
            ..ctx.clone()
        };
        let mut eval = match finished.take() {
            Some(finished) => engine.evaluate_workload_finished(&workload, &with, finished),
            None => engine.evaluate_workload(&workload, &with),
        };
        rounds += 1;
        if eval.unresolved.is_empty() || rounds >= MAX_ROUNDS {
            break eval;
        }
        let more = std::mem::take(&mut eval.unresolved);
        resolution.resolve(app, more, parsing).await?;
    };
    if !C::ENV && eval.env_read {
        return Err(Stop::WithEnv);
    }
    if eval.exempt {
        return Ok((Decision::allow(), Some(eval)));
    }
    let exemption = exemption_note(
        app,
        endpoint,
        &eval,
        &workload.annotations,
        request.namespace(),
    );
    // Mutations apply on CREATE only: container fields are immutable on UPDATE, and a
    // workload's new pods are mutated when they are created.
    let mut planned = if endpoint == Endpoint::Mutate
        && site == FixSite::Here
        && request.operation.as_ref() == "CREATE"
        && app.planner().wants(&eval)
    {
        // A lean cut is planned on when the patch it gives is the whole object's (it
        // rewrites scripts only: `within_cut`); otherwise the whole object is decoded and
        // planned on, with the evaluation already made (the lean cut's is the whole one's).
        //
        // A Pod read straight into its workload is planned on the part of its lean cut a
        // script-only plan reads (`PodRead::script_view`); any other plan needs its object.
        let mut on_lean = None;
        let mut view = pod.map(PodRead::script_view);
        if !C::WHOLE
            && !crate::mutate::may_reshape(engine.config(), &eval)
            && let Some(lean) = view.as_ref().or(request_object.as_ref())
        {
            let on = (lean, Some(&workload));
            let planned = plan(app, engine, &ctx, &eval, on, parsing, resolution).await?;
            // Without the env lists, a re-check that read one may have read it wrong.
            let env_known = C::ENV || !planned.env_read;
            let read_enough = pod.is_none() || planned.on_workload;
            if env_known && read_enough && within_cut(C::ROOT, lean, &planned.patch) {
                on_lean = Some(planned);
            }
        }
        let mut decoded;
        let object = match (view.as_mut(), request_object.as_mut()) {
            (Some(view), _) if on_lean.is_some() => view,
            (None, Some(object)) if C::WHOLE || on_lean.is_some() => object,
            _ => {
                decoded = match full_object(whole_from.body) {
                    Ok(full) => full,
                    Err(e) => return Ok((Decision::malformed_object(mode, &e), Some(eval))),
                };
                &mut decoded
            }
        };
        let mut planned = match on_lean {
            Some(planned) => planned,
            None => {
                // Not the value the workload came from, or lent mutably below: extracted
                // again by the planner when it needs it.
                let on = (&*object, None);
                let planned = plan(app, engine, &ctx, &eval, on, parsing, resolution).await?;
                // A body whose env lists were cut (the whole cut without them, or a lean cut
                // decoded from such a body) plans as the body as sent only when the patch
                // does not depend on them.
                let cut_env = !C::ENV && (C::WHOLE || !whole_from.has_env);
                if cut_env && (planned.env_read || !independent_of_env(&planned.patch)) {
                    return Err(Stop::WithEnv);
                }
                planned
            }
        };
        // Never send a patch that does not apply. The object is not read again: the check
        // applies the patch to it.
        crate::mutate::keep_if_applies(object, &mut planned.patch, &mut planned.notes);
        planned
    } else {
        crate::server::plan::Planned::default()
    };
    planned.notes.extend(notes);
    let mut decision = decision::decide_with_all_notes(
        endpoint,
        mode,
        site,
        &eval,
        planned.patch,
        &planned.notes,
        &input_notes,
    );
    if let Some((key, text)) = exemption {
        decision.audit_annotations.insert(key.to_string(), text);
    }
    Ok((decision, Some(eval)))
}

/// An UPDATE's templates compared on both objects decoded: `None` when they are equal (the
/// review is allowed), or the decision on an object that does not decode. The whole object
/// is at hand when `C` is the whole cut; else it is decoded again.
fn compare_decoded<C: Cut>(
    request: &AdmissionRequest<'_, C>,
    request_object: Option<&Value>,
    whole_from: WholeFrom<'_>,
    pointer: &str,
    mode: Mode,
) -> Option<Decision> {
    let decoded;
    let new = if C::WHOLE {
        request_object
    } else {
        decoded = match whole_object(whole_from.body) {
            Ok(object) => object,
            Err(e) => return Some(Decision::malformed_object(mode, &e)),
        };
        decoded.as_ref()
    };
    let compared = checked(new, "request.object").and_then(|new| {
        let old = parse_object(request.old_object, "request.oldObject")?;
        Ok(json_pointer::get(new, pointer) == json_pointer::get(&old, pointer))
    });
    match compared {
        Ok(true) => Some(Decision::allow()),
        Ok(false) => None,
        Err(e) => Some(Decision::malformed_object(mode, &e)),
    }
}

/// The planner's patch. Its re-checks of the edited object analyse scripts the fixes wrote
/// (an inserted `exec`): known verdicts are used at once; new ones are resolved like the
/// object's own and the plan is made again.
async fn plan(
    app: &App,
    engine: &crate::engine::Engine,
    ctx: &EvalContext<'_>,
    eval: &Evaluation,
    (full, workload): (&Value, Option<&crate::engine::workload::Workload<'_>>),
    parsing: &Parsing,
    resolution: &mut Resolution,
) -> Result<crate::server::plan::Planned, Shed> {
    if matches!(parsing, Parsing::Here) {
        let ctx = EvalContext {
            scripts: Some(&resolution.verdicts),
            ..ctx.clone()
        };
        return Ok(app
            .planner()
            .plan(engine, app.analyzer(), &ctx, eval, full, workload));
    }
    let mut rounds = 0;
    loop {
        let ctx = EvalContext {
            scripts: Some(&resolution.verdicts),
            ..ctx.clone()
        };
        let known = KnownOnly::new(app.analyzer(), &resolution.verdicts);
        let planned = app
            .planner()
            .plan(engine, &known, &ctx, eval, full, workload);
        let missing = known.into_missing();
        rounds += 1;
        if missing.is_empty() || rounds > MAX_CHAIN {
            return Ok(planned);
        }
        resolution.resolve(app, missing, parsing).await?;
    }
}

/// An object over a `limits:` bound. `/validate` reports it (as it reports every denial):
/// enforce denies, since an object too large to check must not pass unchecked; audit warns.
/// `/mutate` leaves it alone.
fn over_limit(endpoint: Endpoint, mode: Mode, message: &str) -> Decision {
    if endpoint == Endpoint::Mutate || mode == Mode::Off {
        return Decision::allow();
    }
    let text = format!("pidone did not analyse the object: {message}");
    let mut decision = Decision::allow();
    decision.audit_annotations.insert(
        "object-limits".to_string(),
        format!(
            "{}: {}",
            if mode == Mode::Enforce {
                "denied"
            } else {
                "would deny"
            },
            decision::one_line(message)
        ),
    );
    if mode == Mode::Enforce {
        decision.allowed = false;
        decision.status = Some(crate::server::review::Status {
            code: 403,
            reason: "Forbidden",
            message: decision::one_line(&text),
        });
        decision.outcome = decision::Outcome::Denied;
    } else {
        let mut warning = decision::one_line(&format!("(audit) {text}"));
        if warning.len() > decision::MAX_WARNING_LEN {
            let mut end = decision::MAX_WARNING_LEN - 3;
            while !warning.is_char_boundary(end) {
                end -= 1;
            }
            warning.truncate(end);
            warning.push_str("...");
        }
        decision.warnings.push(warning);
        decision.outcome = decision::Outcome::Warned;
    }
    decision
}

/// `pidone.io/ignore` on the validate path (where every finding is reported once): rules it
/// switched off are counted in `pidone_exemptions_total{rule,namespace}` and named in the
/// `ignored` audit annotation; an annotation that is not honoured here
/// (`exemptions.allowAnnotations`) is named in `ignore-refused`.
fn exemption_note(
    app: &App,
    endpoint: Endpoint,
    eval: &Evaluation,
    template_annotations: &Annotations<'_>,
    namespace: Option<&str>,
) -> Option<(&'static str, String)> {
    if endpoint != Endpoint::Validate {
        return None;
    }
    let namespace = namespace.or(eval.object.namespace.as_deref()).unwrap_or("");
    if !eval.ignored.is_empty() {
        let rules: Vec<&str> = eval.ignored.iter().map(|r| r.as_str()).collect();
        for rule in &rules {
            app.metrics.limits.exemption(rule, namespace);
        }
        return Some((
            "ignored",
            format!(
                "{} honoured: rules {} not checked",
                crate::engine::evaluate::ANNOTATION_IGNORE,
                rules.join(",")
            ),
        ));
    }
    let annotation = template_annotations.get(crate::engine::evaluate::ANNOTATION_IGNORE)?;
    Some((
        "ignore-refused",
        format!(
            "{}: {:?} not honoured in namespace {namespace:?} (exemptions.allowAnnotations)",
            crate::engine::evaluate::ANNOTATION_IGNORE,
            decision::one_line(annotation)
                .chars()
                .take(64)
                .collect::<String>()
        ),
    ))
}

/// The object, if it is a JSON object.
fn checked<'v>(object: Option<&'v Value>, what: &str) -> Result<&'v Value, String> {
    match object {
        None => Err(format!("{what} is missing or null")),
        Some(v @ Value::Object(_)) => Ok(v),
        Some(_) => Err(format!("{what} is not a JSON object")),
    }
}

/// The whole object (full cut) of a body that already decoded with the lean cut.
fn full_object(body: &[u8]) -> Result<Value, String> {
    whole_object(body)?
        .filter(Value::is_object)
        .ok_or_else(|| "request.object is missing or not a JSON object".to_string())
}

/// The whole object (full cut), if any, of a body that already decoded with the lean cut.
fn whole_object(body: &[u8]) -> Result<Option<Value>, String> {
    Ok(review::decode(body).map_err(|e| e.to_string())?.object)
}

fn parse_object(raw: Option<&RawValue>, what: &str) -> Result<Value, String> {
    let Some(raw) = raw else {
        return Err(format!("{what} is missing or null"));
    };
    match crate::server::object::parse(raw.get()) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(format!("{what} is not a JSON object")),
        Err(e) => Err(format!("{what}: {e}")),
    }
}

fn respond(uid: &str, decision: &Decision) -> Reply {
    let patch = if decision.patch.is_empty() {
        None
    } else if !decision.patch_json.is_empty() {
        Some(review::base64(&decision.patch_json))
    } else {
        match review::encode_patch(&decision.patch) {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::error!(uid, error = %e, "cannot encode the patch");
                return Reply::Plain(500, "pidone could not encode its patch\n");
            }
        }
    };
    let patch_type = patch.as_ref().map(|_| "JSONPatch");
    Reply::Review(review::encode(AdmissionResponse {
        uid,
        allowed: decision.allowed,
        status: decision.status.as_ref(),
        patch,
        patch_type,
        warnings: &decision.warnings,
        audit_annotations: &decision.audit_annotations,
    }))
}

//! The OpenAPI 3.1 document, generated from [`crate::routes::ROUTES`] plus
//! the schemas of the JSON bodies.

use serde_json::{Map, Value, json};

use crate::auth::Access;
use crate::routes::{Answer, QueryParams, ROUTES, RequestBody, RouteSpec};

/// The whole document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for spec in ROUTES {
        let entry = paths
            .entry(spec.path.to_string())
            .or_insert_with(|| json!({}));
        entry[spec.verb.as_str()] = operation(spec);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "assay",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Run evaluation datasets through sandboxed WebAssembly plugins. \
                The /api routes follow the shape of Mastra's datasets API: Mastra's client \
                (@mastra/client-js) drives datasets, items, experiments (an assay run is a Mastra \
                experiment) and scores, and answers carry Mastra's field names next to assay's. \
                Request bodies are strict: an unknown field is a 400 naming it; Mastra's names \
                are accepted where they differ (groundTruth = expectedOutput, groundTruthSchema = \
                outputSchema, datasetVersion = version, experimentIdA/B = runIdA/B). \
                Every /api route needs `Authorization: Bearer <API key>` (an operator creates \
                tenants and keys with `assay tenant create` and `assay key create`) and acts as \
                the key's tenant: `viewer` keys read, `member` keys also change datasets, runs \
                and the tenant's plugins, `admin` keys also manage the tenant's keys. 401: no, \
                unknown or revoked key; 403: the key's role may not do this; another tenant's \
                ids are 404. Shared plugins (shipped, or registered by the operator) are visible \
                to every tenant and read-only. Over a tenant limit or an operator ceiling: 422 \
                `limit_exceeded` naming the limit (`details: {limit, value}`); a trigger over \
                the queued-runs limit is 429 with Retry-After. Errors answer `{message, code}`.",
        },
        "tags": [
            {"name": "datasets"}, {"name": "items"}, {"name": "runs"},
            {"name": "experiments", "description": "Mastra's names and shapes for runs"},
            {"name": "scores", "description": "Mastra's score rows of a run"},
            {"name": "plugins"}, {"name": "tenant"}, {"name": "system"},
        ],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key (`assay_...`), created with `assay key create` \
                        or POST /api/keys. Behind a trusted proxy (`assay serve \
                        --trust-tenant-header`) the `x-assay-tenant` and `x-assay-role` \
                        headers may be used instead.",
                },
            },
        },
    })
}

fn operation(spec: &RouteSpec) -> Value {
    let mut params: Vec<Value> = spec
        .path_params()
        .into_iter()
        .map(|name| {
            let schema = if name == "datasetVersion" {
                json!({"type": "integer", "minimum": 0})
            } else {
                json!({"type": "string"})
            };
            json!({"name": name, "in": "path", "required": true, "schema": schema})
        })
        .collect();
    let query = |name: &str, schema: Value, description: &str| {
        json!({"name": name, "in": "query", "required": false, "schema": schema,
               "description": description})
    };
    let paging = || {
        vec![
            query(
                "page",
                json!({"type": "integer", "minimum": 0, "default": 0}),
                "0-based page",
            ),
            query(
                "perPage",
                json!({"type": "integer", "minimum": 1, "maximum": 100, "default": 10}),
                "rows per page (at most 100)",
            ),
        ]
    };
    match spec.query {
        QueryParams::None => {}
        QueryParams::Paging => params.extend(paging()),
        QueryParams::Items => {
            params.extend(paging());
            params.push(query(
                "version",
                json!({"type": "integer", "minimum": 0}),
                "a past dataset version (default: the live items)",
            ));
            params.push(query(
                "search",
                json!({"type": "string"}),
                "case-insensitive substring of input or expectedOutput",
            ));
        }
        QueryParams::Results => {
            params.extend(paging());
            params.push(query(
                "failed",
                json!({"type": "boolean", "default": false}),
                "only results whose target or one of whose scorers failed",
            ));
            params.push(query(
                "scorer",
                json!({"type": "string"}),
                "the scorer `below` applies to (one of the run's scorers)",
            ));
            params.push(query(
                "below",
                json!({"type": "number"}),
                "only results that `scorer` scored below this value",
            ));
        }
        QueryParams::PassThreshold => params.push(query(
            "passThreshold",
            json!({"type": "number", "default": 0.5}),
            "score at or above which an item passes",
        )),
        QueryParams::Events => {
            params.push(query(
                "after",
                json!({"type": "integer", "minimum": 0}),
                "send only results after this sequence number (as Last-Event-ID)",
            ));
            params.push(
                json!({"name": "Last-Event-ID", "in": "header", "required": false,
                "schema": {"type": "integer"},
                "description": "resume after this result sequence number"}),
            );
        }
    }

    let mut responses = Map::new();
    let (status, content) = match spec.answer {
        Answer::Json(status, schema) => (
            status,
            json!({"application/json": {"schema": schema_ref(schema)}}),
        ),
        Answer::List(key, schema) => (
            200,
            json!({"application/json": {"schema": {
                "type": "object",
                "required": [key, "pagination"],
                "properties": {
                    key: {"type": "array", "items": schema_ref(schema)},
                    "pagination": schema_ref("Pagination"),
                },
            }}}),
        ),
        Answer::EventStream => (
            200,
            json!({"text/event-stream": {"schema": {"type": "string",
                "description": "events `run` (Run), `result` (RunResult, id = sequence number), `end` (Run), `error` (Error)"}}}),
        ),
    };
    responses.insert(
        status.to_string(),
        json!({"description": "success", "content": content}),
    );
    let query_refused = (spec.refuses_query() && !spec.errors.contains(&400)).then_some(&400);
    let auth_errors: &[u16] = if spec.authenticated() {
        &[401, 403]
    } else {
        &[]
    };
    // Every route but /health is under the overload limits (503
    // `overloaded` or `timeout`); a body that stalls is a 408.
    let limited: &[u16] = match (spec.is_exempt_from_limits(), spec.body) {
        (true, _) => &[],
        (false, RequestBody::None) => &[503],
        (false, _) => &[408, 503],
    };
    for code in spec
        .errors
        .iter()
        .chain(query_refused)
        .chain(auth_errors)
        .chain(limited)
        .chain(std::iter::once(&500))
    {
        responses.insert(
            code.to_string(),
            json!({
                "description": error_description(*code),
                "content": {"application/json": {"schema": schema_ref("Error")}},
            }),
        );
    }

    let mut op = json!({
        "operationId": spec.operation_id,
        "summary": spec.summary,
        "tags": [spec.tag],
        "parameters": params,
        "responses": responses,
    });
    match spec.access {
        Access::Open => op["security"] = json!([]),
        Access::Role(role) => {
            op["x-assay-role"] = json!(role);
        }
    }
    match spec.body {
        RequestBody::None => {}
        RequestBody::Json(schema) => {
            op["requestBody"] = json!({"required": true, "content": {
                "application/json": {"schema": schema_ref(schema)}}});
        }
        RequestBody::Wasm => {
            let raw = json!({"schema": {"type": "string", "contentMediaType": "application/wasm"}});
            op["requestBody"] = json!({"required": true, "content": {
                "application/wasm": raw.clone(), "application/octet-stream": raw}});
        }
    }
    op
}

fn error_description(code: u16) -> &'static str {
    match code {
        400 => {
            "invalid request (malformed JSON, an unknown or bad field or query parameter, an unknown plugin, an empty dataset)"
        }
        404 => "not found (also when it belongs to another dataset or tenant)",
        409 => "conflict with the current state",
        413 => "request body over the size limit",
        415 => "wrong Content-Type",
        401 => "no API key, or an unknown or revoked one",
        403 => "the API key's role may not do this",
        422 => "the plugin cannot be loaded, or a tenant limit or operator ceiling is reached",
        408 => "the request body stalled longer than the server's body timeout",
        429 => {
            "the tenant's queue of runs is full, or it has as many event streams open as allowed (see Retry-After)"
        }
        503 => {
            "the database does not answer, or the server is overloaded (`overloaded`, `too_many_streams`: see Retry-After) or did not answer in time (`timeout`)"
        }
        _ => "internal error",
    }
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// `{type: object, required, properties}`.
fn object(required: &[&str], properties: Value) -> Value {
    json!({"type": "object", "required": required, "properties": properties})
}

/// A request body: [`object`] that refuses unknown fields.
fn strict(required: &[&str], properties: Value) -> Value {
    let mut o = object(required, properties);
    o["additionalProperties"] = json!(false);
    o
}

fn nullable(ty: &str) -> Value {
    json!({"type": [ty, "null"]})
}

fn schemas() -> Value {
    let any = json!({});
    let time = json!({"type": "string", "format": "date-time"});
    let time_or_null = json!({"type": ["string", "null"], "format": "date-time"});
    let int = json!({"type": "integer"});
    let string = json!({"type": "string"});
    let strings = json!({"type": "array", "items": {"type": "string"}});
    let ms = |d: &str| json!({"type": "integer", "minimum": 1, "description": d});
    let scorer_token_usage = |d: &str| {
        json!({"type": "object", "description": d,
            "required": ["promptTokens", "completionTokens", "totalTokens", "scores"],
            "properties": {"promptTokens": int, "completionTokens": int, "totalTokens": int,
                "scores": {"type": "integer", "description": "scores whose metadata reported usage (one per item, or per trial with repeats, and scorer)"}}})
    };
    json!({
        "Error": object(&["message", "code"], json!({
            "message": string, "code": string,
            "field": {"type": "string", "description": "the request field at fault"},
            "details": any,
        })),
        "Pagination": object(&["total", "page", "perPage", "hasMore"], json!({
            "total": int, "page": int, "perPage": int, "hasMore": {"type": "boolean"},
        })),
        "Success": object(&["success"], json!({"success": {"const": true}})),
        "Health": object(&["status"], json!({
            "status": string, "version": string, "database": string, "activeRuns": int,
            "executesRuns": {"type": "boolean"},
        })),
        "OpenApiDocument": {"type": "object"},
        "Dataset": object(
            &["id", "name", "version", "itemCount", "createdAt", "updatedAt"],
            json!({
                "id": string, "name": string, "description": nullable("string"),
                "metadata": any,
                "inputSchema": {"description": "absent when not set"},
                "outputSchema": {"description": "absent when not set"},
                "groundTruthSchema": {"description": "Mastra's name of outputSchema"},
                "version": {"type": "integer", "description": "0 on create, +1 per change of the items or schemas"},
                "itemCount": int, "createdAt": time, "updatedAt": time,
            })),
        "NewDataset": strict(&["name"], json!({
            "name": string, "description": nullable("string"), "metadata": any,
            "inputSchema": {"type": ["object", "boolean", "null"], "description": "JSON Schema of item inputs"},
            "outputSchema": {"type": ["object", "boolean", "null"], "description": "JSON Schema of expected outputs"},
            "groundTruthSchema": {"type": ["object", "boolean", "null"], "description": "Mastra's name of outputSchema (send one of the two)"},
        })),
        "DatasetPatch": strict(&[], json!({
            "name": string, "description": nullable("string"), "metadata": any,
            "inputSchema": any, "outputSchema": any,
            "groundTruthSchema": {"description": "Mastra's name of outputSchema (send one of the two)"},
        })),
        "DatasetItem": object(
            &["id", "datasetId", "version", "position", "input", "createdAt", "updatedAt"],
            json!({
                "id": string, "datasetId": string, "version": int,
                "position": {"type": "integer", "description": "dataset order"},
                "input": any, "expectedOutput": any, "context": any,
                "datasetVersion": {"type": "integer", "description": "Mastra's name of version"},
                "groundTruth": {"description": "Mastra's name of expectedOutput"},
                "createdAt": time, "updatedAt": time,
            })),
        "NewItem": strict(&["input"], json!({
            "input": any, "expectedOutput": any, "context": any,
            "groundTruth": {"description": "Mastra's name of expectedOutput (send one of the two)"},
        })),
        "ItemPatch": strict(&[], json!({
            "input": any, "expectedOutput": any, "context": any,
            "groundTruth": {"description": "Mastra's name of expectedOutput (send one of the two)"},
        })),
        "BulkAddItems": strict(&["items"], json!({"items": {"type": "array", "items": schema_ref("NewItem")}})),
        "BulkAddResult": object(&["items", "count"], json!({
            "items": {"type": "array", "items": schema_ref("DatasetItem")}, "count": int,
        })),
        "BulkDeleteItems": strict(&["itemIds"], json!({"itemIds": strings})),
        "BulkDeleteResult": object(&["success", "deletedCount"], json!({
            "success": {"const": true}, "deletedCount": int,
        })),
        "ItemVersion": object(
            &["itemId", "datasetId", "versionNumber", "datasetVersion", "snapshot", "isDeleted", "createdAt"],
            json!({
                "itemId": string, "datasetId": string, "versionNumber": int, "datasetVersion": int,
                "snapshot": object(&["input"], json!({"input": any, "expectedOutput": any, "context": any})),
                "isDeleted": {"type": "boolean"}, "createdAt": time,
            })),
        "ItemHistoryEntry": object(
            &["id", "itemId", "datasetId", "versionNumber", "datasetVersion", "snapshot", "isDeleted",
              "input", "validTo", "createdAt", "updatedAt"],
            json!({
                "id": {"type": "string", "description": "the item id"},
                "itemId": string, "datasetId": string,
                "versionNumber": {"type": "integer", "description": "per item, from 1"},
                "datasetVersion": {"type": "integer", "description": "the dataset version this item version appeared in"},
                "snapshot": object(&["input"], json!({"input": any, "expectedOutput": any, "context": any})),
                "isDeleted": {"type": "boolean", "description": "a tombstone"},
                "input": any, "expectedOutput": any, "context": any,
                "groundTruth": {"description": "Mastra's name of expectedOutput"},
                "validTo": {"type": ["integer", "null"], "description": "the dataset version that replaced it; null while current"},
                "createdAt": {"type": "string", "format": "date-time", "description": "when the item was first added"},
                "updatedAt": {"type": "string", "format": "date-time", "description": "when this version was written"},
            })),
        "ItemHistory": object(&["history"], json!({
            "history": {"type": "array", "items": schema_ref("ItemHistoryEntry")},
        })),
        "DatasetVersion": object(&["id", "datasetId", "version", "createdAt", "change"], json!({
            "id": {"type": "string", "description": "`<datasetId>@<version>`"},
            "datasetId": string, "version": int, "createdAt": time, "change": string,
        })),
        "RunStatus": {"type": "string", "enum": ["pending", "running", "completed", "failed", "cancelled"]},
        "Run": object(
            &["id", "datasetId", "datasetVersion", "targetType", "targetId", "status", "totalItems",
              "succeededCount", "failedCount", "skippedCount", "createdAt", "updatedAt"],
            json!({
                "id": string, "datasetId": string, "datasetVersion": int,
                "targetType": {"type": "string", "enum": ["plugin", "scorer"]},
                "targetId": string, "scorerIds": strings, "status": schema_ref("RunStatus"),
                "totalItems": {"type": "integer", "description": "trials: items times repeats"},
                "repeats": {"type": "integer", "minimum": 1, "description": "trials per item (1: no repeats); the counts count trials"},
                "succeededCount": int, "failedCount": int,
                "skippedCount": {"type": "integer", "description": "total - succeeded - failed once finished"},
                "config": {"type": "object", "description": "the run's options and pinned plugin digests"},
                "error": nullable("string"), "cancelRequested": {"type": "boolean"},
                "takeovers": {"type": "integer", "description": "times another process took the run over after the one running it stopped"},
                "parentRunId": {"type": "string", "description": "the run whose stored outputs this run re-scores (absent for a run that called its target)"},
                "startedAt": time_or_null, "completedAt": time_or_null,
                "createdAt": time, "updatedAt": time,
            })),
        "TriggerRun": strict(&["targetType", "targetId"], json!({
            "targetType": {"type": "string", "enum": ["plugin", "agent", "workflow", "target", "scorer"],
                "description": "`agent`, `workflow` and `target` are aliases of `plugin`"},
            "targetId": string,
            "scorerIds": strings,
            "version": {"type": "integer", "minimum": 0, "description": "dataset version (default: latest)"},
            "datasetVersion": {"type": "integer", "minimum": 0, "description": "alias of version"},
            "start": {"const": true, "description": "Mastra's create-only switch; assay always runs (false is a 400)"},
            "maxConcurrency": {"type": "integer", "minimum": 1, "default": 5},
            "maxRetries": {"type": "integer", "minimum": 0, "default": 0},
            "retryDelay": {"type": "integer", "minimum": 0, "default": 1000, "description": "ms"},
            "itemTimeout": ms("deadline of one item (all attempts), ms"),
            "targetTimeout": ms("deadline of one target call, ms"),
            "scorerTimeout": ms("deadline of one scorer call, ms"),
            "maxMemoryBytes": int,
            "repeat": {"type": "integer", "minimum": 1, "maximum": 100, "default": 1,
                "description": "trials per item: each item is executed this many times (over 100 is a 400)"},
            "targetConfig": any,
            "scorerConfigs": {"type": "object", "additionalProperties": true,
                "description": "config per scorer id"},
            "network": {"type": "object", "additionalProperties": schema_ref("NetworkGrant"),
                "description": "per plugin id: a narrowing of the plugin's stored network grant \
                for this run (a host or plain http beyond the grant is a 400)"},
            "cache": {"type": "boolean", "default": false,
                "description": "output cache: reuse the stored output of the same target (digest), \
                config and item instead of calling the target, and store each new successful \
                output (see docs/caching.md)"},
        })),
        "RescoreRun": strict(&["scorerIds"], json!({
            "scorerIds": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "scorerConfigs": {"type": "object", "additionalProperties": true,
                "description": "config per scorer id (a scorer the parent also had keeps its config when absent)"},
            "maxConcurrency": {"type": "integer", "minimum": 1, "description": "default: the parent run's"},
        })),
        "TriggeredRun": object(
            &["runId", "experimentId", "status", "totalItems", "succeededCount", "failedCount",
              "startedAt", "completedAt", "results"],
            json!({
                "runId": string, "experimentId": {"type": "string", "description": "the same id (Mastra's name)"},
                "datasetId": string, "datasetVersion": int,
                "status": {"const": "pending"}, "totalItems": int,
                "succeededCount": {"const": 0}, "failedCount": {"const": 0}, "skippedCount": {"const": 0},
                "startedAt": {"type": "null"}, "completedAt": {"type": "null"}, "createdAt": time,
                "results": {"type": "array", "maxItems": 0},
            })),
        "ScoreRow": object(&["scorerId", "scorerName"], json!({
            "scorerId": string, "scorerName": string, "score": nullable("number"),
            "reason": nullable("string"), "error": nullable("string"), "metadata": any,
        })),
        "RunResult": object(
            &["id", "runId", "itemId", "itemIndex", "itemVersion", "input", "latency",
              "startedAt", "completedAt", "retryCount", "scores", "createdAt"],
            json!({
                "id": string, "runId": string, "itemId": string,
                "itemIndex": {"type": "integer", "description": "dataset position"},
                "trial": {"type": "integer", "minimum": 0, "description": "which execution of the item (0-based; 0 without repeats)"},
                "itemVersion": int, "input": any, "output": any, "expectedOutput": any,
                "latency": {"type": "number", "description": "ms"},
                "error": nullable("string"), "errorKind": nullable("string"),
                "startedAt": time, "completedAt": time, "retryCount": int,
                "traceId": nullable("string"),
                "targetMetadata": {"description": "what the target reported about its call (token usage, model, latency); contract 0.2 targets only"},
                "logs": any,
                "scores": {"type": "array", "items": schema_ref("ScoreRow")},
                "createdAt": time,
            })),
        "RunSummary": object(
            &["runId", "status", "datasetId", "datasetVersion", "targetId", "totalItems",
              "succeededCount", "failedCount", "skippedCount", "pendingCount", "latencyMs",
              "cachedCount", "passThreshold", "scorers", "failures"],
            json!({
                "runId": string, "status": schema_ref("RunStatus"), "datasetId": string,
                "datasetName": string, "datasetVersion": int, "targetId": string,
                "totalItems": {"type": "integer", "description": "trials: items times repeats"},
                "repeats": {"type": "integer", "description": "trials per item"},
                "succeededCount": int, "failedCount": int, "skippedCount": int,
                "pendingCount": {"type": "integer", "description": "items not finished yet (0 once the run ended)"},
                "error": string,
                "durationMs": {"type": "number", "description": "start to end (or to now)"},
                "itemsPerSecond": {"type": "number"},
                "latencyMs": object(&["count"], json!({
                    "count": int, "mean": nullable("number"), "p50": nullable("number"),
                    "p95": nullable("number"), "max": nullable("number"),
                })),
                "tokenUsage": {
                    "description": "token usage the target reported in its metadata, summed over the run's items; absent when no item reported any",
                    "type": "object", "required": ["promptTokens", "completionTokens", "totalTokens", "items"],
                    "properties": {"promptTokens": int, "completionTokens": int, "totalTokens": int,
                        "items": {"type": "integer", "description": "items that reported usage"}}},
                "scorerTokenUsage": scorer_token_usage(
                    "token usage the scorers (an LLM judge) reported in their scores' metadata, summed over all scorers and items, apart from the target's tokenUsage; absent when no score reported any"),
                "cachedCount": {"type": "integer", "description": "items whose output came from the \
                    output cache (the target was not called for them; their latency and usage are \
                    those of the call that produced the output)"},
                "passThreshold": {"type": "number"},
                "scorers": {"type": "array", "description": "in the run's scorer order", "items": object(
                    &["scorerId", "scorerName", "itemCount", "passCount", "scoredCount", "errorCount", "histogram"],
                    json!({
                        "scorerId": string, "scorerName": string,
                        "mean": {"type": ["number", "null"], "description": "with repeats: the mean of per-item means"},
                        "itemCount": {"type": "integer", "description": "items with a score: the n of the uncertainty"},
                        "standardDeviation": {"type": "number", "description": "sample sd over items (absent below 2)"},
                        "standardError": {"type": "number", "description": "standardDeviation / sqrt(itemCount)"},
                        "ci95": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2,
                            "description": "95% interval of the mean (Student's t, itemCount - 1 degrees of freedom)"},
                        "passRate": nullable("number"),
                        "passCount": int, "scoredCount": int, "errorCount": int,
                        "histogram": {"type": "array", "items": int, "minItems": 10, "maxItems": 10,
                            "description": "scores per tenth of [0, 1]: [0, 0.1) first, [0.9, 1] last"},
                        "tokenUsage": scorer_token_usage(
                            "token usage this scorer reported in its scores' metadata (an LLM judge's calls); absent when none of its scores reported any"),
                    }))},
                "failures": {"type": "array", "description": "grouped by identical error, largest group first",
                    "items": object(&["source", "message", "count", "itemIndexes"], json!({
                        "source": {"type": "string", "description": "`target` or a scorer id"},
                        "kind": string, "message": string, "count": int,
                        "itemIndexes": {"type": "array", "items": int, "description": "the first few"},
                    }))},
            })),
        "Threshold": strict(&[], json!({
            "value": {"type": "number", "default": 0},
            "direction": {"type": "string", "enum": ["higher-is-better", "lower-is-better"]},
        })),
        "CompareRuns": strict(&[], json!({
            "runIdA": {"type": "string", "description": "baseline run (required; or experimentIdA)"},
            "runIdB": {"type": "string", "description": "candidate run (required; or experimentIdB)"},
            "experimentIdA": {"type": "string", "description": "Mastra's name of runIdA"},
            "experimentIdB": {"type": "string", "description": "Mastra's name of runIdB"},
            "thresholds": {"type": "object", "additionalProperties": schema_ref("Threshold")},
            "passThreshold": {"type": "number", "default": 0.5},
            "afterIndex": {"type": "integer", "description": "list the items after this item index (the previous answer's nextAfterIndex)"},
            "limit": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 1000, "description": "most items listed"},
            "regressedOnly": {"type": "boolean", "default": false, "description": "list only the items that regressed"},
        })),
        "ComparisonResult": object(
            &["runA", "runB", "baselineId", "versionMismatch", "hasRegression", "scorers",
              "itemsTotal", "regressedItems", "items", "nextAfterIndex", "warnings"],
            json!({
                "runA": {"type": "object"}, "runB": {"type": "object"},
                "baselineId": {"type": "string", "description": "run A's id (Mastra)"},
                "versionMismatch": {"type": "boolean"}, "hasRegression": {"type": "boolean"},
                "scorers": {"type": "object", "description": "per scorer id: statsA, statsB, delta, regressed, threshold, \
                    significance (a paired t-test over the items scored in both runs, per-item means of trials: \
                    pairs, meanDifference, standardError, ci95, t, degreesOfFreedom, pValue, significant; null below 2 pairs)"},
                "itemsTotal": {"type": "integer", "description": "items with a result in either run"},
                "regressedItems": {"type": "integer", "description": "items that regressed"},
                "items": {"type": "array", "items": {"type": "object", "description":
                    "one window of the items in dataset order: itemId, itemIndex, inBothRuns, \
                     scoresA, scoresB, errorA, errorB, regressed; and Mastra's input, groundTruth, \
                     results ({<runId>: {output, scores} or null})"}},
                "nextAfterIndex": {"type": ["integer", "null"], "description":
                    "pass as afterIndex for the next window; null after the last"},
                "warnings": strings,
            })),
        "Experiment": object(
            &["id", "datasetId", "datasetVersion", "targetType", "targetId", "status", "runStatus",
              "totalItems", "succeededCount", "failedCount", "skippedCount", "startedAt", "completedAt",
              "createdAt", "updatedAt"],
            json!({
                "id": string, "datasetId": string, "datasetVersion": int,
                "targetType": {"type": "string", "enum": ["agent", "scorer"],
                    "description": "a target plugin is an `agent`"},
                "targetId": string, "scorerIds": strings,
                "status": {"type": "string", "enum": ["pending", "running", "completed", "failed"],
                    "description": "Mastra's status: a cancelled run is `failed`"},
                "runStatus": schema_ref("RunStatus"),
                "totalItems": {"type": "integer", "description": "trials: items times repeats"},
                "repeats": {"type": "integer", "minimum": 1, "description": "trials per item"},
                "succeededCount": int, "failedCount": int, "skippedCount": int,
                "config": {"type": "object"}, "error": nullable("string"),
                "cancelRequested": {"type": "boolean"},
                "takeovers": {"type": "integer"},
                "startedAt": time_or_null, "completedAt": time_or_null,
                "createdAt": time, "updatedAt": time,
            })),
        "ExperimentResult": object(
            &["id", "experimentId", "runId", "itemId", "itemDatasetVersion", "input", "output",
              "groundTruth", "error", "startedAt", "completedAt", "retryCount", "traceId", "createdAt"],
            json!({
                "id": string, "experimentId": string, "runId": string, "itemId": string,
                "itemIndex": int, "itemVersion": int,
                "trial": {"type": "integer", "minimum": 0, "description": "which execution of the item (0 without repeats)"},
                "itemDatasetVersion": {"type": "integer", "description": "Mastra's name of itemVersion"},
                "input": any, "output": any, "expectedOutput": any,
                "groundTruth": {"description": "Mastra's name of expectedOutput"},
                "latency": {"type": "number", "description": "ms"},
                "error": {"type": ["object", "null"], "required": ["message"], "properties": {
                    "message": string, "code": {"type": "string", "description": "assay's errorKind"}}},
                "errorKind": nullable("string"),
                "startedAt": time, "completedAt": time, "retryCount": int,
                "traceId": nullable("string"),
                "targetMetadata": {"description": "what the target reported about its call (token usage, model, latency); contract 0.2 targets only"},
                "logs": any,
                "scores": {"type": "array", "items": schema_ref("ScoreRow")},
                "createdAt": time,
            })),
        "Score": object(
            &["id", "scorerId", "entityId", "runId", "output", "score", "scorer", "source", "entity",
              "createdAt", "updatedAt"],
            json!({
                "id": {"type": "string", "description": "`<resultId>:<scorerId>`"},
                "scorerId": string,
                "entityId": {"type": "string", "description": "the item id"},
                "runId": string, "input": any, "output": any, "score": {"type": "number"},
                "reason": string,
                "scorer": object(&["id", "name"], json!({"id": string, "name": string})),
                "source": {"const": "TEST"},
                "entity": object(&["id", "name"], json!({"id": string, "name": string})),
                "entityType": {"const": "AGENT", "description": "absent when the target is a scorer"},
                "metadata": {"type": "object"}, "traceId": string,
                "datasetId": string, "datasetItemId": string,
                "createdAt": time, "updatedAt": {"type": "null"},
            })),
        "Plugin": object(
            &["id", "kind", "name", "description", "digest", "contractVersion", "size", "createdAt"],
            json!({
                "id": string, "kind": {"type": "string", "enum": ["scorer", "target"]},
                "name": string, "description": string,
                "digest": {"type": "string", "description": "sha256:<hex> of the component"},
                "contractVersion": string, "size": int, "createdAt": time,
                "shared": {"type": "boolean",
                    "description": "a shared plugin (shipped or registered by the operator): read-only"},
            })),
        "Role": {"type": "string", "enum": ["viewer", "member", "admin"]},
        "ApiKey": object(&["id", "tenantId", "role", "prefix", "createdAt"], json!({
            "id": string, "tenantId": string, "name": nullable("string"),
            "role": schema_ref("Role"),
            "prefix": {"type": "string", "description": "the first characters of the token"},
            "createdAt": time, "revokedAt": {"type": ["string", "null"], "format": "date-time"},
        })),
        "NewApiKey": {"type": "object", "additionalProperties": false, "properties": {
            "role": schema_ref("Role"), "name": string,
        }},
        "CreatedApiKey": object(&["key", "token"], json!({
            "key": schema_ref("ApiKey"),
            "token": {"type": "string", "description": "the secret: shown in this answer only"},
        })),
        "TenantLimits": {"type": "object", "properties": {
            "itemsInFlight": int, "activeRuns": int, "queuedRuns": int, "datasets": int,
            "itemsPerDataset": int, "storedBytes": int, "plugins": int, "pluginBytes": int,
            "weight": {"type": "integer", "minimum": 1, "maximum": 1000,
                       "description": "fair-share weight: the tenant's share of the \
                        process while other tenants have work, relative to theirs"},
            "cacheBytes": {"type": "integer", "minimum": 0,
                           "description": "budget of the output cache: least recently used \
                            outputs beyond it are evicted"},
        }},
        "CacheStats": object(&["entries", "bytes", "limitBytes"], json!({
            "entries": int, "bytes": int,
            "limitBytes": {"type": "integer", "description": "the tenant's `cache-bytes` limit"},
        })),
        "CacheCleared": object(&["entries", "bytes"], json!({
            "entries": {"type": "integer", "description": "entries removed"},
            "bytes": {"type": "integer", "description": "bytes they counted"},
        })),
        "TenantUsage": {"type": "object", "properties": {
            "datasets": int, "storedBytes": int, "plugins": int, "pluginBytes": int,
            "activeRuns": int, "queuedRuns": int, "cacheBytes": int,
        }},
        "TenantStatus": object(&["id", "role", "limits", "usage"], json!({
            "id": string, "role": schema_ref("Role"), "keyId": nullable("string"),
            "limits": schema_ref("TenantLimits"), "usage": schema_ref("TenantUsage"),
        })),
        "PluginDetail": {"allOf": [schema_ref("Plugin"), object(&[], json!({
            "world": string, "imports": strings, "exports": strings,
            "loadError": {"type": "string", "description": "set when the component cannot be loaded"},
            "networkGrant": {"oneOf": [schema_ref("NetworkGrant"), {"type": "null"}],
                "description": "the hosts the plugin may reach in this tenant's runs (null: none)"},
        }))]},
        "NetworkGrant": {"type": "object", "additionalProperties": false, "properties": {
            "hosts": {"type": "array", "items": {"type": "string",
                "description": "api.openai.com, *.example.com:8443 or 127.0.0.1:8080"}},
            "allowHttp": {"type": "boolean", "description": "plain http besides https"},
            "limits": {"type": "object", "additionalProperties": false, "properties": {
                "maxRequests": int, "maxRequestBytes": int, "maxResponseBytes": int,
                "connectTimeoutMs": int, "timeoutMs": int,
            }},
            "rateLimits": {"type": "array", "description": "per-host rates shared by all of a run's calls; \
                a request waits for every one whose host matches it",
                "items": {"type": "object", "additionalProperties": false, "required": ["host"], "properties": {
                    "host": {"type": "string", "description": "a host pattern, as in hosts"},
                    "requestsPerSecond": {"type": "number", "exclusiveMinimum": 0, "maximum": 1_000_000,
                        "description": "requests wait for their turn, never fail"},
                    "tokensPerMinute": {"type": "integer", "minimum": 1,
                        "description": "tokens the host reports in `usage` of its JSON answers; requests wait while the last minute's reach it"},
                }}},
        }},
        "PluginGrant": object(&["pluginId", "grant", "grantedBy", "updatedAt"], json!({
            "pluginId": string, "grant": schema_ref("NetworkGrant"),
            "grantedBy": {"type": "string", "description": "`key:<id>`, `api` or `cli`"},
            "updatedAt": time,
        })),
        "SecretInfo": object(&["name", "createdAt", "updatedAt"], json!({
            "name": {"type": "string", "pattern": "^[A-Z_][A-Z0-9_]*$", "maxLength": 128},
            "createdAt": time, "updatedAt": time,
        })),
        "SecretValue": {"type": "object", "additionalProperties": false, "required": ["value"],
            "properties": {"value": {"type": "string", "minLength": 1, "writeOnly": true}}},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `$ref` in the document points at something defined.
    #[test]
    fn every_reference_resolves() {
        let doc = document();
        let mut refs = Vec::new();
        collect_refs(&doc, &mut refs);
        assert!(!refs.is_empty());
        for r in refs {
            let pointer = r.strip_prefix('#').expect("local ref");
            assert!(doc.pointer(pointer).is_some(), "dangling $ref {r}");
        }
    }

    fn collect_refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r.clone());
                }
                m.values().for_each(|v| collect_refs(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| collect_refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_path_parameter_is_declared() {
        let doc = document();
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for (method, op) in ops.as_object().unwrap() {
                let declared: Vec<&str> = op["parameters"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|p| p["in"] == "path")
                    .map(|p| p["name"].as_str().unwrap())
                    .collect();
                let in_path: Vec<&str> = path
                    .split('/')
                    .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                    .collect();
                assert_eq!(declared, in_path, "{method} {path}");
            }
        }
    }
}

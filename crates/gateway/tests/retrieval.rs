//! Retrieval routes beyond chat: rerank on Bedrock, SageMaker TEI and
//! upstreams; embeddings on SageMaker TEI and toolkit containers.

use mock_upstreams::{BedrockModel, BedrockReply, FakeBedrock};
use serde_json::{Value, json};

use crate::support::{KEY, config, post, post_json, start};

#[tokio::test(flavor = "multi_thread")]
async fn rerank_on_bedrock_sagemaker_tei_and_upstreams() {
    use mock_upstreams::{ContainerDialect, Endpoint, FakeOpenAi, Reply};
    let f = FakeBedrock::start().await.unwrap();
    f.add(
        "cohere.rerank-v3-5:0",
        BedrockModel::new(BedrockReply::Rerank),
    );
    let sm = crate::support::fake().await;
    let mut tei = Endpoint::echo(ContainerDialect::OpenAi);
    tei.reply = Reply::Rerank;
    sm.add("reranker", tei);
    let up = FakeOpenAi::start("jina").await.unwrap();
    let cfg = format!(
        "\n[[models]]\nname = \"cohere-rerank\"\nbackend = \"bedrock\"\nmodel_id = \"cohere.rerank-v3-5:0\"\nendpoint_url = \"{}\"\n\n[[models]]\nname = \"tei-rerank\"\nendpoint = \"reranker\"\n\n[[upstreams]]\nname = \"jina\"\nbase_url = \"{}\"\nmodels_allow = [\"jina-reranker-*\"]\n",
        f.url(),
        up.base_url()
    );
    let gw = start(&sm.url(), &config(&cfg), &[]);
    let docs =
        json!(["the cat sat", {"text": "dogs bark loudly"}, "a cat and a dog", "nothing here"]);
    for model in ["cohere-rerank", "tei-rerank", "jina-reranker-v2"] {
        let ask = |top_n: u64, docs_back: bool| json!({"model": model, "query": "cat dog", "documents": docs, "top_n": top_n, "return_documents": docs_back});
        let r = post_json(&gw, "/v1/rerank", ask(2, true)).await;
        let order: Vec<u64> = r["results"]
            .as_array()
            .unwrap_or_else(|| panic!("{model}: {r}"))
            .iter()
            .map(|x| x["index"].as_u64().unwrap())
            .collect();
        assert_eq!(order, [2, 0], "{model}: {r}");
        assert_eq!(r["model"], model);
        assert!(r["id"].as_str().unwrap().starts_with("rerank"), "{r}");
        if model != "jina-reranker-v2" {
            assert_eq!(
                r["results"][0]["document"]["text"], "a cat and a dog",
                "{model}: {r}"
            );
        }
        assert!(
            r["results"][0]["relevance_score"].as_f64().unwrap()
                > r["results"][1]["relevance_score"].as_f64().unwrap()
        );
        // top_n past the documents: every document, never an error.
        let all = post_json(&gw, "/v2/rerank", ask(50, false)).await;
        assert_eq!(
            all["results"].as_array().unwrap().len(),
            4,
            "{model}: {all}"
        );
    }
    // Refusals in the OpenAI envelope, by field.
    let r = post(
        &gw,
        "/v1/rerank",
        json!({"model": "cohere-rerank", "query": " ", "documents": ["a"]}),
    )
    .await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["param"], "query");
    // A chat endpoint answers something else than TEI's shape: a 502 that
    // says so, not a made-up ranking.
    let r = post(
        &gw,
        "/v1/rerank",
        json!({"model": "chat", "query": "q", "documents": ["a"]}),
    )
    .await;
    assert_eq!(r.status(), 502);
    let e: Value = r.json().await.unwrap();
    assert!(
        e["error"]["message"].as_str().unwrap().contains("TEI"),
        "{e}"
    );
}

/// Embeddings on SageMaker containers through the OpenAI SDK: TEI (a
/// vector a text) and the Hugging Face toolkit's feature extraction (a
/// vector a token, mean-pooled), floats and base64 (token-id input is
/// decoded as for Bedrock, `token_ids`); more texts than one call carries
/// go in batches, in order.
const SM_EMBEDDINGS: &str = r#"
import base64, os, struct, openai
client = openai.OpenAI(base_url=os.environ["BASE"] + "/v1", api_key=os.environ["KEY"])
texts = [f"text number {i}" for i in range(70)]
e = client.embeddings.create(model="tei-embed", input=texts)
assert [d.index for d in e.data] == list(range(70)), [d.index for d in e.data][:5]
assert [d.embedding[1] for d in e.data] == [float(i % 32) for i in range(70)], "batches of 32, in order"
assert e.data[69].embedding[0] == float(len(texts[69])) and e.usage.prompt_tokens > 0, e.data[69]
b = client.embeddings.create(model="tei-embed", input="abc", encoding_format="base64")
assert list(struct.unpack("<3f", base64.b64decode(b.data[0].embedding))) == [3.0, 0.0, 0.5], b.data[0].embedding
t = client.embeddings.create(model="hf-embed", input="one three fives")
assert abs(t.data[0].embedding[0] - 13 / 3) < 1e-5 and t.data[0].embedding[1] == 0.0, t.data[0].embedding
try:
    client.embeddings.create(model="tei-embed", input="x", dimensions=8)
    raise SystemExit("expected 400")
except openai.BadRequestError as err:
    assert err.param == "dimensions", err
print("sm-embeddings-ok")
"#;

#[tokio::test(flavor = "multi_thread")]
async fn embeddings_on_sagemaker_tei_and_toolkit_containers() {
    use mock_upstreams::{ContainerDialect, Endpoint, Reply};
    let sm = crate::support::fake().await;
    for (name, per_token) in [("tei", false), ("hf", true)] {
        let mut ep = Endpoint::echo(ContainerDialect::OpenAi);
        ep.reply = Reply::Embedding { per_token };
        sm.add(name, ep);
    }
    let cfg = "\n[[models]]\nname = \"tei-embed\"\nendpoint = \"tei\"\n\n[[models]]\nname = \"hf-embed\"\nendpoint = \"hf\"\n";
    let gw = start(&sm.url(), &config(cfg), &[]);
    let env = vec![("BASE", gw.url.clone()), ("KEY", KEY.to_owned())];
    crate::support::run_python(SM_EMBEDDINGS, env, "sm-embeddings-ok", &gw).await;
}

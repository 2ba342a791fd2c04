using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace CrmEngine.Host.Tests;

/// <summary>
/// Webhooks through the real <c>crm</c> process and its real API-key pipeline: a subscription made with
/// <c>crm webhooks create</c> on the stopped database and one made over HTTP (401 without a key, 403 with a read key,
/// 201 with an admin key); a change delivered, signed, to a real loopback listener whose signature the test verifies and
/// whose <c>data</c> equals <c>GET /api/customers/{id}</c>; a failing listener retried then parked, visible in the
/// history over HTTP and through <c>crm webhooks deliveries</c>, redelivered with <c>crm webhooks redeliver</c>; deleted
/// offline.
/// </summary>
public sealed partial class WebhooksHostTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Bound = ApiHostTests.Bound;

    [GeneratedRegex(@"^whsec_\S+$")]
    private static partial Regex SecretLine();

    [GeneratedRegex(@"wh_[0-9a-f]{32}")]
    private static partial Regex SubscriptionId();

    [Fact]
    public async Task Subscriptions_from_cli_and_api_deliver_signed_api_shaped_changes_retry_park_and_redeliver()
    {
        using var good = new Listener(_ => 200);
        var failing = true;
        using var flaky = new Listener(_ => Volatile.Read(ref failing) ? 503 : 200);
        using var root = new TestRoot(s =>
        {
            s["Webhooks"]!["AllowPrivateTargets"] = true; // the listeners are on loopback
            s["Webhooks"]!["MaxAttempts"] = 3;
            s["Webhooks"]!["RetryBaseDelay"] = "00:00:00.100";
            s["Webhooks"]!["RetryMaxDelay"] = "00:00:00.300";
            s["Webhooks"]!["PollInterval"] = "00:00:00.050";
        });

        // Stopped: keys and a subscription (to the failing listener) straight on the database.
        var (code, text) = await CrmProcess.RunAsync(root.Path, output, "apikeys", "create", "--name", "hooks-admin", "--scope", "admin");
        Assert.Equal(0, code);
        var adminKey = ApiHostTests.ParseKey(text);
        (code, text) = await CrmProcess.RunAsync(root.Path, output, "apikeys", "create", "--name", "hooks-read", "--scope", "read");
        Assert.Equal(0, code);
        var readKey = ApiHostTests.ParseKey(text);

        (code, text) = await CrmProcess.RunAsync(root.Path, output, "webhooks", "create", "--url", flaky.Url, "--events", "customer.created");
        Assert.True(code == 0, text);
        var cliSubscription = SubscriptionId().Match(text).Value;
        var cliSecret = text.Split('\n').Select(l => l.Trim()).Single(l => SecretLine().IsMatch(l));
        (code, text) = await CrmProcess.RunAsync(root.Path, output, "webhooks", "create", "--url", flaky.Url, "--events", "custmer.*");
        Assert.NotEqual(0, code);
        Assert.Contains("custmer", text, StringComparison.Ordinal);
        (code, text) = await CrmProcess.RunAsync(root.Path, output, "webhooks", "list");
        Assert.Equal(0, code);
        Assert.Contains(cliSubscription, text, StringComparison.Ordinal);
        Assert.DoesNotContain(cliSecret, text, StringComparison.Ordinal);

        using (var crm = CrmProcess.Start(root.Path, output, "run"))
        {
            await crm.WaitForReadyAsync();
            await crm.WaitForLineAsync(l => l.Contains("HTTP API listening on", StringComparison.Ordinal), Bound);
            using var http = new HttpClient { BaseAddress = root.ApiBase, Timeout = Bound };
            var subscription = new { url = good.Url, events = new[] { "customer.*" }, description = "e2e" };

            using (var anonymous = await http.PostAsync("api/webhooks", System.Net.Http.Json.JsonContent.Create(subscription)))
            {
                await ApiHostTests.AssertProblemAsync(anonymous, HttpStatusCode.Unauthorized);
            }

            using (var reader = await ApiHostTests.SendAsync(http, HttpMethod.Post, "api/webhooks", readKey, subscription))
            {
                var problem = await ApiHostTests.AssertProblemAsync(reader, HttpStatusCode.Forbidden);
                Assert.Equal("admin", problem["requiredScope"]!.GetValue<string>());
            }

            string apiSubscription, apiSecret;
            using (var created = await ApiHostTests.SendAsync(http, HttpMethod.Post, "api/webhooks", adminKey, subscription))
            {
                var body = await created.Content.ReadAsStringAsync();
                Assert.True(created.StatusCode == HttpStatusCode.Created, body);
                var json = JsonNode.Parse(body)!;
                apiSubscription = json["id"]!.GetValue<string>();
                apiSecret = json["secret"]!.GetValue<string>();
            }

            // The refused requests stored nothing: one subscription from the CLI, one from the API.
            using (var list = await ApiHostTests.SendAsync(http, HttpMethod.Get, "api/webhooks", adminKey))
            {
                var items = JsonNode.Parse(await list.Content.ReadAsStringAsync())!["items"]!.AsArray();
                Assert.Equal(2, items.Count);
            }

            string customerId;
            using (var created = await ApiHostTests.SendAsync(http, HttpMethod.Post, "api/customers", adminKey,
                       new { name = "Hook Kunde 张", emails = new[] { "hook@example.com" }, tags = new[] { "b2b" } }))
            {
                var body = await created.Content.ReadAsStringAsync();
                Assert.True(created.StatusCode == HttpStatusCode.Created, body);
                customerId = JsonNode.Parse(body)!["id"]!.GetValue<string>();
            }

            // Delivered to the good listener, signed with the API subscription's secret.
            var delivery = await good.WaitForAsync(r => r.Json["entityId"]?.GetValue<string>() == customerId, Bound);
            Assert.Equal("customer.created", delivery.Headers["X-Crm-Event"]);
            Assert.True(Verify(apiSecret, delivery.Headers["X-Crm-Timestamp"]!, delivery.Headers["X-Crm-Signature"]!, delivery.Body),
                "the X-Crm-Signature verifies with the subscription's secret");
            Assert.False(Verify(cliSecret, delivery.Headers["X-Crm-Timestamp"]!, delivery.Headers["X-Crm-Signature"]!, delivery.Body));
            Assert.Equal("apikey:hooks-admin", delivery.Json["actor"]!.GetValue<string>());

            // data has the API's shape: exactly what GET /api/customers/{id} answers for that version.
            using (var read = await ApiHostTests.SendAsync(http, HttpMethod.Get, $"api/customers/{customerId}", readKey))
            {
                var resource = JsonNode.Parse(await read.Content.ReadAsStringAsync())!.AsObject();
                var data = delivery.Json["data"]!.AsObject();
                Assert.Equal(resource.Select(p => p.Key), data.Select(p => p.Key));
                // A rule may have changed the card since; the version delivered must then look the same for its own fields.
                if (resource["version"]!.GetValue<long>() == data["version"]!.GetValue<long>())
                {
                    Assert.True(JsonNode.DeepEquals(resource, data), $"webhook data differs from GET:\n{data.ToJsonString()}\n{resource.ToJsonString()}");
                }

                Assert.Equal("Hook Kunde 张", delivery.Json["data"]!["name"]!.GetValue<string>());
            }

            // The failing listener: three tries (503), then parked, visible over HTTP and through the CLI (control channel).
            JsonNode? parked = null;
            await ApiHostTests.EventuallyAsync(() => ApiHostTests.SendAsync(http, HttpMethod.Get, $"api/webhooks/{cliSubscription}/deliveries?state=parked", adminKey),
                r =>
                {
                    var items = JsonNode.Parse(r.Content.ReadAsStringAsync().GetAwaiter().GetResult())?["items"]?.AsArray();
                    parked = items?.FirstOrDefault(i => i?["entityId"]?.GetValue<string>() == customerId);
                    return parked is not null;
                }, "the delivery to the failing listener is parked");
            Assert.Equal(3, parked!["attempts"]!.GetValue<int>());
            Assert.Equal(503, parked["lastStatusCode"]!.GetValue<int>());
            Assert.Contains("503", parked["lastError"]!.GetValue<string>(), StringComparison.Ordinal);
            Assert.Equal(3, flaky.Received.Count(r => r.Json["entityId"]?.GetValue<string>() == customerId));
            var parkedId = parked["id"]!.GetValue<string>();

            (code, text) = await CrmProcess.RunAsync(root.Path, output, "webhooks", "deliveries", cliSubscription);
            Assert.Equal(0, code);
            var line = text.Split('\n').Single(l => l.StartsWith(parkedId, StringComparison.Ordinal));
            Assert.Contains("parked", line, StringComparison.Ordinal);
            Assert.Contains("503", line, StringComparison.Ordinal);

            // Fixed receiver, redelivered through the CLI: delivered, signed with the CLI subscription's secret.
            Volatile.Write(ref failing, false);
            (code, text) = await CrmProcess.RunAsync(root.Path, output, "webhooks", "redeliver", cliSubscription, parkedId);
            Assert.True(code == 0, text);
            var redelivered = await flaky.WaitForAsync(r => r.Status == 200 && r.Json["entityId"]?.GetValue<string>() == customerId, Bound);
            Assert.Equal(parkedId, redelivered.Headers["X-Crm-Delivery"]);
            Assert.True(Verify(cliSecret, redelivered.Headers["X-Crm-Timestamp"]!, redelivered.Headers["X-Crm-Signature"]!, redelivered.Body));
            (code, text) = await CrmProcess.RunAsync(root.Path, output, "webhooks", "redeliver", cliSubscription, parkedId);
            Assert.NotEqual(0, code); // no longer parked

            crm.Signal(CrmProcess.SIGTERM);
            Assert.Equal(0, await crm.WaitForExitAsync(Bound));
            Assert.DoesNotContain(apiSecret, crm.Output, StringComparison.Ordinal);
            Assert.DoesNotContain(cliSecret, crm.Output, StringComparison.Ordinal);
            Assert.DoesNotContain(adminKey, crm.Output, StringComparison.Ordinal);
            Assert.NotEqual(apiSubscription, cliSubscription);
        }

        // Stopped again: delete straight on the database.
        (code, text) = await CrmProcess.RunAsync(root.Path, output, "webhooks", "delete", cliSubscription);
        Assert.True(code == 0, text);
        (code, text) = await CrmProcess.RunAsync(root.Path, output, "webhooks", "list");
        Assert.Equal(0, code);
        Assert.DoesNotContain(cliSubscription, text, StringComparison.Ordinal);
    }

    /// <summary>What a receiver does: HMAC-SHA256 over "timestamp.body", compared in constant time.</summary>
    private static bool Verify(string secret, string timestamp, string signature, byte[] body)
    {
        var signed = Encoding.UTF8.GetBytes(timestamp + ".").Concat(body).ToArray();
        var expected = "sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), signed));
        return CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(expected), Encoding.ASCII.GetBytes(signature));
    }

    internal sealed record Request(Dictionary<string, string?> Headers, byte[] Body, int Status)
    {
        public JsonNode Json => JsonNode.Parse(Body)!;
    }

    /// <summary>A real HTTP listener on a free loopback port that records every POST and answers with <c>answer</c>.</summary>
    internal sealed class Listener : IDisposable
    {
        private readonly HttpListener _listener = new();
        private readonly ConcurrentQueue<Request> _received = new();
        private readonly Func<Request, int> _answer;
        private readonly Task _loop;

        public Listener(Func<Request, int> answer)
        {
            _answer = answer;
            var port = TestRoot.FreePort();
            Url = $"http://127.0.0.1:{port}/hook";
            _listener.Prefixes.Add($"http://127.0.0.1:{port}/");
            _listener.Start();
            _loop = Task.Run(LoopAsync);
        }

        public string Url { get; }

        public IReadOnlyList<Request> Received => _received.ToList();

        public async Task<Request> WaitForAsync(Func<Request, bool> match, TimeSpan bound)
        {
            var until = DateTime.UtcNow + bound;
            while (true)
            {
                if (_received.FirstOrDefault(match) is { } hit)
                {
                    return hit;
                }

                Assert.True(DateTime.UtcNow < until, $"no matching request within {bound}; got {_received.Count}");
                await Task.Delay(50);
            }
        }

        private async Task LoopAsync()
        {
            while (_listener.IsListening)
            {
                HttpListenerContext context;
                try
                {
                    context = await _listener.GetContextAsync();
                }
                catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException or InvalidOperationException)
                {
                    return;
                }

                using var buffer = new MemoryStream();
                await context.Request.InputStream.CopyToAsync(buffer);
                var headers = context.Request.Headers.AllKeys.OfType<string>().ToDictionary(k => k, k => context.Request.Headers[k], StringComparer.OrdinalIgnoreCase);
                var probe = new Request(headers, buffer.ToArray(), 0);
                var status = _answer(probe);
                _received.Enqueue(probe with { Status = status });
                context.Response.StatusCode = status;
                context.Response.Close();
            }
        }

        public void Dispose()
        {
            _listener.Stop();
            _listener.Close();
            _loop.Wait(TimeSpan.FromSeconds(10));
        }
    }
}

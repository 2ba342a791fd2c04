using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace CrmEngine.Host.Tests;

/// <summary>
/// The HTTP API of the real <c>crm</c> process: a key made with <c>crm apikeys create</c> while the engine is stopped
/// (directly on the database), health and OpenAPI without a key, 401 without one, a customer created and read back
/// with its ETag, and — while the engine runs, through the control channel — a read key refused a write (403) and the
/// first key revoked (401 from then on).
/// </summary>
public sealed partial class ApiHostTests(ITestOutputHelper output)
{
    internal static readonly TimeSpan Bound = TimeSpan.FromMinutes(2);

    [GeneratedRegex(@"^crm_\S+$")]
    private static partial Regex KeyLine();

    [Fact]
    public async Task Keys_made_offline_and_while_running_authorize_scope_and_revoke_over_real_http()
    {
        using var root = new TestRoot();
        var port = root.ApiPort;
        var baseAddress = root.ApiBase;

        // Stopped: the key is made directly on the database and printed once.
        var (code, text) = await CrmProcess.RunAsync(root.Path, output, "apikeys", "create", "--name", "e2e", "--scope", "write");
        Assert.Equal(0, code);
        Assert.Contains("API key 'e2e'", text, StringComparison.Ordinal);
        Assert.Contains("scope write", text, StringComparison.Ordinal);
        var writeKey = ParseKey(text);

        (code, text) = await CrmProcess.RunAsync(root.Path, output, "apikeys", "list");
        Assert.Equal(0, code);
        Assert.Contains("e2e", text, StringComparison.Ordinal);
        Assert.Contains("write", text, StringComparison.Ordinal);
        Assert.DoesNotContain(writeKey, text, StringComparison.Ordinal);

        using (var crm = CrmProcess.Start(root.Path, output, "run"))
        {
            await crm.WaitForReadyAsync();
            await crm.WaitForLineAsync(l => l.Contains("HTTP API listening on", StringComparison.Ordinal) && l.Contains($":{port}", StringComparison.Ordinal), Bound);
            using var http = new HttpClient { BaseAddress = baseAddress, Timeout = Bound };

            // No key needed for health and the OpenAPI document.
            using (var health = await EventuallyAsync(() => http.GetAsync("health"), r => r.StatusCode == HttpStatusCode.OK, "GET /health → 200"))
            {
                var body = JsonNode.Parse(await health.Content.ReadAsStringAsync())!;
                Assert.Contains(body["status"]!.GetValue<string>(), new[] { "ok", "degraded" });
            }

            using (var openApi = await http.GetAsync("openapi/v1.json"))
            {
                Assert.Equal(HttpStatusCode.OK, openApi.StatusCode);
                Assert.Equal("application/json", openApi.Content.Headers.ContentType?.MediaType);
                var doc = JsonNode.Parse(await openApi.Content.ReadAsStringAsync())!;
                Assert.NotNull(doc["openapi"]);
                Assert.NotNull(doc["paths"]!["/api/customers"]);
            }

            // /api without a key: 401 as a problem.
            using (var anonymous = await http.GetAsync("api/customers"))
            {
                await AssertProblemAsync(anonymous, HttpStatusCode.Unauthorized);
            }

            // With the write key: create, then read it back with its ETag.
            string id;
            string etag;
            using (var created = await SendAsync(http, HttpMethod.Post, "api/customers", writeKey, new { name = "E2E Kunde GmbH" }))
            {
                var body = await created.Content.ReadAsStringAsync();
                Assert.True(created.StatusCode == HttpStatusCode.Created, $"{(int)created.StatusCode}: {body}");
                Assert.NotNull(created.Headers.Location);
                Assert.NotNull(created.Headers.ETag);
                etag = created.Headers.ETag!.Tag;
                id = JsonNode.Parse(body)!["id"]!.GetValue<string>();
                Assert.False(string.IsNullOrEmpty(id));
            }

            using (var read = await SendAsync(http, HttpMethod.Get, $"api/customers/{id}", writeKey))
            {
                var body = await read.Content.ReadAsStringAsync();
                Assert.True(read.StatusCode == HttpStatusCode.OK, $"{(int)read.StatusCode}: {body}");
                Assert.Equal(etag, read.Headers.ETag?.Tag);
                var customer = JsonNode.Parse(body)!;
                Assert.Equal(id, customer["id"]!.GetValue<string>());
                Assert.Equal("E2E Kunde GmbH", customer["name"]!.GetValue<string>());
            }

            // Optimistic concurrency over real HTTP: a change with the ETag read wins, a second one with the same (now stale) ETag gets 412.
            string newTag;
            using (var patch = new HttpRequestMessage(HttpMethod.Patch, $"api/customers/{id}") { Content = JsonContent.Create(new { owner = "rep-1" }) })
            {
                patch.Headers.Add("X-Api-Key", writeKey);
                patch.Headers.TryAddWithoutValidation("If-Match", etag);
                using var patched = await http.SendAsync(patch);
                Assert.True(patched.StatusCode == HttpStatusCode.OK, await patched.Content.ReadAsStringAsync());
                newTag = patched.Headers.ETag!.Tag;
                Assert.NotEqual(etag, newTag);
            }

            using (var stale = new HttpRequestMessage(HttpMethod.Patch, $"api/customers/{id}") { Content = JsonContent.Create(new { owner = "rep-2" }) })
            {
                stale.Headers.Add("X-Api-Key", writeKey);
                stale.Headers.TryAddWithoutValidation("If-Match", etag);
                var problem = await AssertProblemAsync(await http.SendAsync(stale), HttpStatusCode.PreconditionFailed);
                Assert.Equal(long.Parse(newTag.Trim('"'), System.Globalization.CultureInfo.InvariantCulture), problem["currentVersion"]!.GetValue<long>());
            }

            // The change feed: the create and the one update of that customer, in order, once each.
            using (var changes = await SendAsync(http, HttpMethod.Get, "api/changes?since=0&limit=1000", writeKey))
            {
                var body = JsonNode.Parse(await changes.Content.ReadAsStringAsync())!;
                var mine = body["changes"]!.AsArray().Where(c => c!["entity"]?.GetValue<string>() == "customer" && c["id"]?.GetValue<string>() == id).ToList();
                Assert.Equal(["create", "update"], mine.Select(c => c!["operation"]!.GetValue<string>().ToLowerInvariant()));
                Assert.True(mine[0]!["sequence"]!.GetValue<long>() < mine[1]!["sequence"]!.GetValue<long>());
            }

            // Running: a read key through the control channel may read but not write.
            (code, text) = await CrmProcess.RunAsync(root.Path, output, "apikeys", "create", "--name", "e2e-read", "--scope", "read");
            Assert.Equal(0, code);
            Assert.Contains("API key 'e2e-read'", text, StringComparison.Ordinal);
            var readKey = ParseKey(text);
            Assert.NotEqual(writeKey, readKey);

            using (var allowed = await SendAsync(http, HttpMethod.Get, $"api/customers/{id}", readKey))
            {
                Assert.True(allowed.StatusCode == HttpStatusCode.OK, $"{(int)allowed.StatusCode}: {await allowed.Content.ReadAsStringAsync()}");
            }

            using (var refused = await SendAsync(http, HttpMethod.Post, "api/customers", readKey, new { name = "Not Stored" }))
            {
                var problem = await AssertProblemAsync(refused, HttpStatusCode.Forbidden);
                Assert.Equal("write", problem["requiredScope"]?.GetValue<string>());
            }

            (code, text) = await CrmProcess.RunAsync(root.Path, output, "apikeys", "list");
            Assert.Equal(0, code);
            Assert.Contains("e2e-read", text, StringComparison.Ordinal);
            Assert.DoesNotContain(writeKey, text, StringComparison.Ordinal);
            Assert.DoesNotContain(readKey, text, StringComparison.Ordinal);

            // Revoked while running: the old key gets 401 from then on; the read key still works.
            (code, text) = await CrmProcess.RunAsync(root.Path, output, "apikeys", "revoke", "e2e");
            Assert.Equal(0, code);
            Assert.Contains("API key 'e2e'", text, StringComparison.Ordinal);
            Assert.Contains("revoked", text, StringComparison.Ordinal);

            using (var revoked = await SendAsync(http, HttpMethod.Get, $"api/customers/{id}", writeKey))
            {
                await AssertProblemAsync(revoked, HttpStatusCode.Unauthorized);
            }

            using (var revokedWrite = await SendAsync(http, HttpMethod.Post, "api/customers", writeKey, new { name = "Not Stored Either" }))
            {
                await AssertProblemAsync(revokedWrite, HttpStatusCode.Unauthorized);
            }

            using (var search = await SendAsync(http, HttpMethod.Get, "api/customers", readKey))
            {
                var body = await search.Content.ReadAsStringAsync();
                Assert.True(search.StatusCode == HttpStatusCode.OK, $"{(int)search.StatusCode}: {body}");
                Assert.Contains("E2E Kunde GmbH", body, StringComparison.Ordinal);
                Assert.DoesNotContain("Not Stored", body, StringComparison.Ordinal);
            }

            crm.Signal(CrmProcess.SIGTERM);
            Assert.Equal(0, await crm.WaitForExitAsync(Bound));
            Assert.DoesNotContain(writeKey, crm.Output, StringComparison.Ordinal);
            Assert.DoesNotContain(readKey, crm.Output, StringComparison.Ordinal);
        }

        // Stopped again: the database shows the revocation.
        (code, text) = await CrmProcess.RunAsync(root.Path, output, "apikeys", "list");
        Assert.Equal(0, code);
        var e2eLine = text.Split('\n').Single(l => l.StartsWith("e2e ", StringComparison.Ordinal));
        Assert.DoesNotMatch(@"\s-\s*$", e2eLine);
        var readLine = text.Split('\n').Single(l => l.StartsWith("e2e-read ", StringComparison.Ordinal));
        Assert.Matches(@"\s-\s*$", readLine);
    }

    [Fact]
    public async Task Data_exchange_and_mail_endpoints_answer_401_403_and_succeed_with_the_right_scope_over_real_http()
    {
        using var root = new TestRoot();
        var keys = new Dictionary<string, string>();
        foreach (var scope in new[] { "read", "write", "admin" })
        {
            var (code, text) = await CrmProcess.RunAsync(root.Path, output, "apikeys", "create", "--name", "dx-" + scope, "--scope", scope);
            Assert.Equal(0, code);
            keys[scope] = ParseKey(text);
        }

        using var crm = CrmProcess.Start(root.Path, output, "run");
        await crm.WaitForReadyAsync();
        await crm.WaitForLineAsync(l => l.Contains("HTTP API listening on", StringComparison.Ordinal), Bound);
        using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = root.ApiBase, Timeout = Bound };
        const string csv = "name,email,city\nAnna Import,anna@example.com,Wien\nBob Import,bob@example.com,Graz\n";

        HttpRequestMessage Import(string? key)
        {
            var request = new HttpRequestMessage(HttpMethod.Post, "api/customers/import") { Content = new StringContent(csv, System.Text.Encoding.UTF8, "text/csv") };
            if (key is not null)
            {
                request.Headers.Add("X-Api-Key", key);
            }

            return request;
        }

        await AssertProblemAsync(await http.SendAsync(Import(null)), HttpStatusCode.Unauthorized);
        await AssertProblemAsync(await http.SendAsync(Import(keys["read"])), HttpStatusCode.Forbidden);
        using (var imported = await http.SendAsync(Import(keys["write"])))
        {
            var body = await imported.Content.ReadAsStringAsync();
            Assert.True(imported.StatusCode == HttpStatusCode.OK, body);
            Assert.Equal(2, JsonNode.Parse(body)!["created"]!.GetValue<int>());
        }

        async Task<string> IdByEmail(string email)
        {
            using var found = await SendAsync(http, HttpMethod.Get, $"api/customers?email={email}", keys["read"]);
            return JsonNode.Parse(await found.Content.ReadAsStringAsync())!["items"]!.AsArray().Single()!["id"]!.GetValue<string>();
        }

        var anna = await IdByEmail("anna@example.com");
        var bob = await IdByEmail("bob@example.com");

        // Export of one customer: read scope.
        await AssertProblemAsync(await http.GetAsync($"api/customers/{anna}/export"), HttpStatusCode.Unauthorized);
        using (var export = await SendAsync(http, HttpMethod.Get, $"api/customers/{anna}/export", keys["read"]))
        {
            var body = await export.Content.ReadAsStringAsync();
            Assert.True(export.StatusCode == HttpStatusCode.OK, body);
            Assert.Contains("Anna Import", body, StringComparison.Ordinal);
        }

        // Merge: write scope; the removed id then redirects (308) to the kept one.
        await AssertProblemAsync(await SendAsync(http, HttpMethod.Post, $"api/customers/{anna}/merge", keys["read"], new { remove = bob, force = true }), HttpStatusCode.Forbidden);
        using (var merged = await SendAsync(http, HttpMethod.Post, $"api/customers/{anna}/merge", keys["write"], new { remove = bob, force = true }))
        {
            Assert.True(merged.StatusCode == HttpStatusCode.OK, await merged.Content.ReadAsStringAsync());
        }

        using (var redirected = await SendAsync(http, HttpMethod.Get, $"api/customers/{bob}", keys["read"]))
        {
            Assert.Equal(HttpStatusCode.PermanentRedirect, redirected.StatusCode);
            Assert.Contains(anna, redirected.Headers.Location!.ToString(), StringComparison.Ordinal);
        }

        // Export of everything and erase: admin scope.
        await AssertProblemAsync(await SendAsync(http, HttpMethod.Get, "api/customers/export", keys["write"]), HttpStatusCode.Forbidden);
        using (var all = await SendAsync(http, HttpMethod.Get, "api/customers/export", keys["admin"]))
        {
            Assert.Equal(HttpStatusCode.OK, all.StatusCode);
            Assert.Contains("Anna Import", await all.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        await AssertProblemAsync(await SendAsync(http, HttpMethod.Post, $"api/customers/{anna}/erase", keys["write"], new { reason = "request" }), HttpStatusCode.Forbidden);
        using (var export = await SendAsync(http, HttpMethod.Get, $"api/customers/{anna}/export", keys["read"]))
        {
            Assert.Contains("Anna Import", await export.Content.ReadAsStringAsync(), StringComparison.Ordinal); // the refusal changed nothing
        }

        using (var erased = await SendAsync(http, HttpMethod.Post, $"api/customers/{anna}/erase", keys["admin"], new { reason = "GDPR request 17" }))
        {
            Assert.True(erased.StatusCode == HttpStatusCode.OK, await erased.Content.ReadAsStringAsync());
        }

        using (var read = await SendAsync(http, HttpMethod.Get, $"api/customers/{anna}", keys["read"]))
        {
            Assert.DoesNotContain("Anna Import", await read.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        // Mail outbox: list with read, retry needs admin.
        await AssertProblemAsync(await http.GetAsync("api/mail/messages"), HttpStatusCode.Unauthorized);
        using (var list = await SendAsync(http, HttpMethod.Get, "api/mail/messages", keys["read"]))
        {
            Assert.True(list.StatusCode == HttpStatusCode.OK, await list.Content.ReadAsStringAsync());
        }

        await AssertProblemAsync(await SendAsync(http, HttpMethod.Post, "api/mail/messages/no-such-message/retry", keys["write"], new { }), HttpStatusCode.Forbidden);
        await AssertProblemAsync(await SendAsync(http, HttpMethod.Post, "api/mail/messages/no-such-message/retry", keys["admin"], new { }), HttpStatusCode.NotFound);

        // An unknown key: one log line for the refusal, never the key itself.
        const string wrong = "crm_no-such-key-AAAABBBBCCCCDDDD";
        await AssertProblemAsync(await SendAsync(http, HttpMethod.Get, "api/customers", wrong), HttpStatusCode.Unauthorized);
        await crm.WaitForLineAsync(l => l.Contains("refused: unknown API key", StringComparison.Ordinal), Bound);
        crm.Signal(CrmProcess.SIGTERM);
        Assert.Equal(0, await crm.WaitForExitAsync(Bound));
        Assert.Single(crm.Lines, l => l.Contains("refused: unknown API key", StringComparison.Ordinal));
        foreach (var key in keys.Values.Append(wrong))
        {
            Assert.DoesNotContain(key, crm.Output, StringComparison.Ordinal);
            Assert.DoesNotContain(key[4..], string.Join('\n', Directory.GetFiles(root.Path, "*.log", SearchOption.AllDirectories).Select(File.ReadAllText)), StringComparison.Ordinal);
        }
    }

    internal static string ParseKey(string text) =>
        text.Split('\n').Select(l => l.Trim()).SingleOrDefault(l => KeyLine().IsMatch(l))
        ?? throw new Xunit.Sdk.XunitException("no key (crm_...) in the output:\n" + text);

    internal static async Task<HttpResponseMessage> SendAsync(HttpClient http, HttpMethod method, string path, string key, object? body = null)
    {
        using var request = new HttpRequestMessage(method, path);
        request.Headers.Add("X-Api-Key", key);
        if (body is not null)
        {
            request.Content = JsonContent.Create(body);
        }

        return await http.SendAsync(request);
    }

    internal static async Task<JsonNode> AssertProblemAsync(HttpResponseMessage response, HttpStatusCode status)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == status, $"expected {(int)status}, got {(int)response.StatusCode}: {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonNode.Parse(body)!;
        Assert.Equal((int)status, problem["status"]!.GetValue<int>());
        Assert.False(string.IsNullOrEmpty(problem["title"]?.GetValue<string>()));
        return problem;
    }

    internal static async Task<HttpResponseMessage> EventuallyAsync(Func<Task<HttpResponseMessage>> send, Func<HttpResponseMessage, bool> done, string what)
    {
        var until = DateTime.UtcNow + Bound;
        var last = "";
        while (true)
        {
            try
            {
                var response = await send();
                if (done(response))
                {
                    return response;
                }

                last = $"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}";
                response.Dispose();
            }
            catch (HttpRequestException ex)
            {
                last = ex.Message;
            }

            if (DateTime.UtcNow > until)
            {
                throw new Xunit.Sdk.XunitException($"timed out waiting for {what}; last: {last}");
            }

            await Task.Delay(100);
        }
    }
}

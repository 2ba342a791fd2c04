using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using CrmEngine.Abstractions.Model;

namespace CrmEngine.Webhooks.Tests;

public class ApiTests
{
    [Fact]
    public async Task The_secret_is_shown_once_at_creation_and_never_in_reads_or_logs()
    {
        await using var receiver = await Receiver.StartAsync();
        await using var engine = await TestEngine.StartAsync();
        var (id, secret) = await engine.SubscribeAsync(receiver.Url("/hook?token=abc"), "customer.created");

        var one = await engine.GetJsonAsync($"/api/webhooks/{id}");
        var list = await engine.GetJsonAsync("/api/webhooks");
        Assert.False(one.TryGetProperty("secret", out _));
        Assert.DoesNotContain(secret, one.GetRawText(), StringComparison.Ordinal);
        Assert.DoesNotContain(secret, list.GetRawText(), StringComparison.Ordinal);
        Assert.Equal("apikey:ops-admin", one.GetProperty("createdBy").GetString());
        Assert.Equal("test receiver", one.GetProperty("description").GetString());
        Assert.True(one.GetProperty("active").GetBoolean());

        // A failing receiver makes the engine log the delivery; neither the secret nor the URL's query is in the log.
        receiver.Respond = (_, _) => Task.FromResult((500, "boom"));
        await engine.Store.Customers.CreateAsync(new Customer { Name = "Logged" });
        await Eventually.WaitAsync(() => engine.Logs.Lines.Any(l => l.Contains("failed (try 1", StringComparison.Ordinal)), "a failed try is logged");
        using (var patched = await engine.Client.PatchAsync($"/api/webhooks/{id}", Json.Body("{\"secret\":\"a-brand-new-secret-of-sorts\"}")))
        {
            Assert.Equal(HttpStatusCode.OK, patched.StatusCode);
            Assert.DoesNotContain("a-brand-new-secret-of-sorts", await patched.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        await Eventually.WaitAsync(() => receiver.Requests.Any(r => Receiver.Verify("a-brand-new-secret-of-sorts", r.Timestamp, r.Signature, r.Body)),
            "later tries are signed with the new secret");
        Assert.DoesNotContain(secret, engine.Logs.All, StringComparison.Ordinal);
        Assert.DoesNotContain("a-brand-new-secret-of-sorts", engine.Logs.All, StringComparison.Ordinal);
        Assert.DoesNotContain("token=abc", engine.Logs.All, StringComparison.Ordinal);
        var history = await engine.GetJsonAsync($"/api/webhooks/{id}/deliveries");
        Assert.DoesNotContain(secret, history.GetRawText(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_given_secret_is_used_and_a_ping_is_signed_with_it()
    {
        await using var receiver = await Receiver.StartAsync();
        await using var engine = await TestEngine.StartAsync();
        using var created = await engine.Client.PostAsync("/api/webhooks",
            Json.Body("{\"url\":\"" + receiver.Url() + "\",\"events\":[\"*\"],\"secret\":\"my-own-secret-0123456789\",\"active\":false}"));
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var body = await created.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("my-own-secret-0123456789", body.GetProperty("secret").GetString());
        var id = body.GetProperty("id").GetString();
        Assert.Equal($"/api/webhooks/{id}", created.Headers.Location!.OriginalString);

        using var ping = await engine.Client.PostAsync($"/api/webhooks/{id}/ping", null);
        var result = await ping.Content.ReadFromJsonAsync<JsonElement>();
        Assert.True(result.GetProperty("delivered").GetBoolean(), result.GetRawText());
        Assert.Equal(200, result.GetProperty("statusCode").GetInt32());
        var r = Assert.Single(receiver.Requests);
        Assert.Equal("ping", r.Event);
        Assert.Equal(result.GetProperty("deliveryId").GetString(), r.DeliveryId);
        Assert.True(Receiver.Verify("my-own-secret-0123456789", r.Timestamp, r.Signature, r.Body));

        receiver.Respond = (_, _) => Task.FromResult((401, "bad signature"));
        using var failing = await engine.Client.PostAsync($"/api/webhooks/{id}/ping", null);
        var failed = await failing.Content.ReadFromJsonAsync<JsonElement>();
        Assert.False(failed.GetProperty("delivered").GetBoolean());
        Assert.Equal(401, failed.GetProperty("statusCode").GetInt32());
        Assert.Contains("bad signature", failed.GetProperty("error").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_inactive_subscription_gets_nothing_and_patching_it_changes_what_it_gets()
    {
        await using var receiver = await Receiver.StartAsync();
        await using var engine = await TestEngine.StartAsync();
        var (id, _) = await engine.SubscribeAsync(receiver.Url(), "customer.created");
        using (var off = await engine.Client.PatchAsync($"/api/webhooks/{id}", Json.Body("{\"active\":false}")))
        {
            Assert.Equal(HttpStatusCode.OK, off.StatusCode);
        }

        await engine.Store.Customers.CreateAsync(new Customer { Name = "While off" });
        using (var on = await engine.Client.PatchAsync($"/api/webhooks/{id}", Json.Body("{\"active\":true,\"events\":[\"product.created\"],\"description\":null}")))
        {
            var view = await on.Content.ReadFromJsonAsync<JsonElement>();
            Assert.Equal(["product.created"], view.GetProperty("events").EnumerateArray().Select(e => e.GetString()));
            Assert.Equal(JsonValueKind.Null, view.GetProperty("description").ValueKind);
        }

        await engine.Store.Customers.CreateAsync(new Customer { Name = "Not listed any more" });
        await engine.Store.Products.CreateAsync(new Product { Sku = "P-1", Name = "Listed" });
        await Eventually.WaitAsync(() => receiver.Delivered.Count == 1, "the product create is delivered");
        Assert.Equal("product.created", receiver.Delivered.Single().Event);
        Assert.Single(await engine.DeliveriesAsync(id));

        using var deleted = await engine.Client.DeleteAsync($"/api/webhooks/{id}");
        Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        using var gone = await engine.Client.GetAsync($"/api/webhooks/{id}");
        Assert.Equal(HttpStatusCode.NotFound, gone.StatusCode);
        Assert.Equal("application/problem+json", gone.Content.Headers.ContentType?.MediaType);
        using var goneHistory = await engine.Client.GetAsync($"/api/webhooks/{id}/deliveries");
        Assert.Equal(HttpStatusCode.NotFound, goneHistory.StatusCode);
    }

    [Theory]
    [InlineData("{\"url\":\"ftp://example.com/x\",\"events\":[\"*\"]}", "url", "scheme 'ftp'")]
    [InlineData("{\"url\":\"not a url\",\"events\":[\"*\"]}", "url", "not an absolute URL")]
    [InlineData("{\"url\":\"https://user:pw@example.com/x\",\"events\":[\"*\"]}", "url", "user name or password")]
    [InlineData("{\"events\":[\"*\"]}", "url", "is required")]
    [InlineData("{\"url\":\"https://example.com/x\",\"events\":[]}", "events", "at least one")]
    [InlineData("{\"url\":\"https://example.com/x\",\"events\":[\"custmer.created\"]}", "events[0]", "unknown entity 'custmer'")]
    [InlineData("{\"url\":\"https://example.com/x\",\"events\":[\"customer.made\"]}", "events[0]", "unknown operation 'made'")]
    [InlineData("{\"url\":\"https://example.com/x\",\"events\":[\"*\", 5]}", "events[1]", "must be a string")]
    [InlineData("{\"url\":\"https://example.com/x\",\"events\":\"*\"}", "events", "must be an array")]
    [InlineData("{\"url\":\"https://example.com/x\",\"events\":[\"*\"],\"secret\":\"short\"}", "secret", "16 to 256")]
    [InlineData("{\"url\":\"https://example.com/x\",\"events\":[\"*\"],\"active\":\"yes\"}", "active", "true or false")]
    [InlineData("{\"url\":\"https://example.com/x\",\"events\":[\"*\"],\"colour\":\"red\"}", "colour", "unknown field")]
    public async Task A_bad_subscription_is_refused_naming_the_field_and_nothing_is_stored(string body, string field, string message)
    {
        await using var engine = await TestEngine.StartAsync();
        using var response = await engine.Client.PostAsync("/api/webhooks", Json.Body(body));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>();
        // The API's problem shape: errors lists {field, message}; field names the first; detail says it in one line.
        Assert.Equal(400, problem.GetProperty("status").GetInt32());
        Assert.Equal("Bad request", problem.GetProperty("title").GetString());
        Assert.Contains(problem.GetProperty("errors").EnumerateArray(),
            e => e.GetProperty("field").GetString() == field && e.GetProperty("message").GetString()!.Contains(message, StringComparison.Ordinal));
        Assert.Contains(field + ": ", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.False(string.IsNullOrEmpty(problem.GetProperty("field").GetString()));
        Assert.Empty((await engine.GetJsonAsync("/api/webhooks")).GetProperty("items").EnumerateArray());
    }

    [Fact]
    public async Task Broken_json_a_bad_patch_and_bad_queries_are_refused_clearly()
    {
        await using var engine = await TestEngine.StartAsync();
        var (id, _) = await engine.SubscribeAsync("https://example.com/hook", "customer.*");
        using (var broken = await engine.Client.PostAsync("/api/webhooks", Json.Body("{\"url\":")))
        {
            Assert.Equal(HttpStatusCode.BadRequest, broken.StatusCode);
            Assert.Contains("not valid JSON", await broken.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        using (var text = await engine.Client.PostAsync("/api/webhooks", new StringContent("url=x")))
        {
            Assert.Equal(HttpStatusCode.UnsupportedMediaType, text.StatusCode);
        }

        // One bad field refuses the whole change: the good one is not applied either.
        using (var half = await engine.Client.PatchAsync($"/api/webhooks/{id}", Json.Body("{\"description\":\"new\",\"url\":\"mailto:x@y\"}")))
        {
            Assert.Equal(HttpStatusCode.BadRequest, half.StatusCode);
        }

        Assert.Equal("test receiver", (await engine.GetJsonAsync($"/api/webhooks/{id}")).GetProperty("description").GetString());
        using (var empty = await engine.Client.PatchAsync($"/api/webhooks/{id}", Json.Body("{}")))
        {
            Assert.Equal(HttpStatusCode.BadRequest, empty.StatusCode);
        }

        using (var missing = await engine.Client.PatchAsync("/api/webhooks/wh_nope", Json.Body("{\"active\":false}")))
        {
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        }

        using (var badState = await engine.Client.GetAsync($"/api/webhooks/{id}/deliveries?state=lost&limit=0"))
        {
            Assert.Equal(HttpStatusCode.BadRequest, badState.StatusCode);
            var problem = await badState.Content.ReadFromJsonAsync<JsonElement>();
            var fields = problem.GetProperty("errors").EnumerateArray().Select(e => e.GetProperty("field").GetString()).ToList();
            Assert.Contains("state", fields);
            Assert.Contains("limit", fields);
            Assert.Equal("state", problem.GetProperty("field").GetString());
        }
    }

    [Fact]
    public async Task Without_a_key_or_with_a_read_key_nothing_can_be_seen_or_changed()
    {
        await using var engine = await TestEngine.StartAsync();
        var (id, _) = await engine.SubscribeAsync("https://example.com/hook", "customer.*");
        using var anonymous = new HttpClient { BaseAddress = engine.Client.BaseAddress };
        using var reader = new HttpClient { BaseAddress = engine.Client.BaseAddress };
        reader.DefaultRequestHeaders.Add("X-Api-Key", TestEngine.ReadKey);

        using (var r = await anonymous.GetAsync("/api/webhooks"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
        }

        using (var r = await anonymous.PostAsync("/api/webhooks", Json.Body("{\"url\":\"https://evil.example/x\",\"events\":[\"*\"]}")))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
        }

        using (var r = await reader.GetAsync($"/api/webhooks/{id}"))
        {
            Assert.Equal(HttpStatusCode.Forbidden, r.StatusCode);
        }

        using (var r = await reader.PostAsync("/api/webhooks", Json.Body("{\"url\":\"https://evil.example/x\",\"events\":[\"*\"]}")))
        {
            Assert.Equal(HttpStatusCode.Forbidden, r.StatusCode);
        }

        using (var r = await reader.DeleteAsync($"/api/webhooks/{id}"))
        {
            Assert.Equal(HttpStatusCode.Forbidden, r.StatusCode);
        }

        var all = (await engine.GetJsonAsync("/api/webhooks")).GetProperty("items").EnumerateArray().ToList();
        Assert.Equal(id, Assert.Single(all).GetProperty("id").GetString());
    }

    [Fact]
    public async Task The_delivery_history_pages_back_from_the_newest_and_filters_by_state()
    {
        await using var receiver = await Receiver.StartAsync();
        await using var engine = await TestEngine.StartAsync();
        var (id, _) = await engine.SubscribeAsync(receiver.Url(), "customer.created");
        for (var i = 0; i < 5; i++)
        {
            await engine.Store.Customers.CreateAsync(new Customer { Name = "Paged " + i });
        }

        await Eventually.WaitAsync(() => receiver.Delivered.Count == 5, "five delivered");
        var seen = new List<long>();
        string? next = null;
        do
        {
            var page = await engine.GetJsonAsync($"/api/webhooks/{id}/deliveries?limit=2" + (next is null ? "" : "&before=" + next));
            seen.AddRange(page.GetProperty("items").EnumerateArray().Select(d => d.GetProperty("sequence").GetInt64()));
            next = page.GetProperty("next").ValueKind == JsonValueKind.Null ? null : page.GetProperty("next").GetString();
        }
        while (next is not null);

        Assert.Equal(receiver.Delivered.Select(r => r.Sequence).OrderDescending(), seen);
        Assert.Empty((await engine.GetJsonAsync($"/api/webhooks/{id}/deliveries?state=parked")).GetProperty("items").EnumerateArray());
        Assert.Equal(5, (await engine.GetJsonAsync($"/api/webhooks/{id}/deliveries?state=delivered")).GetProperty("items").GetArrayLength());
    }
}

using System.Net;
using System.Net.Http.Headers;
using CrmEngine.Abstractions.Http;
using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;
using CrmEngine.Api.Keys;
using CrmEngine.Api.Tests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace CrmEngine.Api.Tests;

/// <summary>API keys over real HTTP: missing, unknown, revoked, expired, wrong scope; the actor; keys never logged.</summary>
public sealed class AuthenticationTests
{
    [Fact]
    public async Task A_request_without_a_key_or_with_an_unknown_key_gets_401_problem_details_and_nothing_changes()
    {
        await using var api = await ApiTestHost.StartAsync(o => o.ConfigureServices = (s, _) => s.AddSingleton<IApiEndpointModule, ProbeModule>());
        var before = await api.Store().Changes.LastSequenceAsync();

        var none = await api.Anonymous.PostAsync("api/probe/customers", ApiTestHost.Json("""{"name":"Nobody"}"""));
        var problem = await ApiTestHost.AssertProblemAsync(none, 401);
        Assert.Contains("X-Api-Key", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Contains("ApiKey", none.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);

        var unknown = await api.Client("crm_not-a-real-key").PostAsync("api/probe/customers", ApiTestHost.Json("""{"name":"Nobody"}"""));
        problem = await ApiTestHost.AssertProblemAsync(unknown, 401);
        Assert.Contains("not valid", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);

        var changes = await api.Anonymous.GetAsync("api/changes");
        await ApiTestHost.AssertProblemAsync(changes, 401);

        Assert.Equal(before, await api.Store().Changes.LastSequenceAsync());
    }

    [Fact]
    public async Task The_key_is_accepted_in_the_Authorization_header_too()
    {
        await using var api = await ApiTestHost.StartAsync();
        var client = api.Client(null);
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("ApiKey", api.ReadKey);
        var response = await client.GetAsync("api/changes");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task A_key_with_too_small_a_scope_gets_403_naming_the_needed_scope_and_nothing_changes()
    {
        await using var api = await ApiTestHost.StartAsync(o => o.ConfigureServices = (s, _) => s.AddSingleton<IApiEndpointModule, ProbeModule>());
        var before = await api.Store().Changes.LastSequenceAsync();

        var write = await api.Reader.PostAsync("api/probe/customers", ApiTestHost.Json("""{"name":"Blocked"}"""));
        var problem = await ApiTestHost.AssertProblemAsync(write, 403);
        Assert.Equal("write", problem.GetProperty("requiredScope").GetString());
        Assert.Contains("'write' scope", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);

        var admin = await api.Writer.DeleteAsync("api/probe/everything");
        problem = await ApiTestHost.AssertProblemAsync(admin, 403);
        Assert.Equal("admin", problem.GetProperty("requiredScope").GetString());
        Assert.Equal(before, await api.Store().Changes.LastSequenceAsync());

        // Admin includes write includes read.
        Assert.Equal(HttpStatusCode.Created, (await api.Admin.PostAsync("api/probe/customers", ApiTestHost.Json("""{"name":"By admin"}"""))).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await api.Writer.PostAsync("api/probe/customers", ApiTestHost.Json("""{"name":"By writer"}"""))).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await api.Admin.DeleteAsync("api/probe/everything")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await api.Writer.GetAsync("api/changes")).StatusCode);
    }

    [Fact]
    public async Task Writes_through_the_API_are_recorded_as_the_key_in_the_audit_log_and_change_feed()
    {
        await using var api = await ApiTestHost.StartAsync(o => o.ConfigureServices = (s, _) => s.AddSingleton<IApiEndpointModule, ProbeModule>());
        var response = await api.Writer.PostAsync("api/probe/customers", ApiTestHost.Json("""{"name":"Audited"}"""));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var id = (await ApiTestHost.ReadJsonAsync(response)).GetProperty("id").GetString()!;

        var audit = await api.Store().Audit.ForEntityAsync(EntityNames.Customer, id);
        Assert.Equal("apikey:test-write", Assert.Single(audit).Actor);
        var change = (await api.Store().Changes.ReadAsync(0)).Single(c => c.EntityId == id);
        Assert.Equal("apikey:test-write", change.Actor);
    }

    [Fact]
    public async Task Revoked_and_expired_keys_get_401_saying_why()
    {
        var clock = new ShiftedClock();
        await using var api = await ApiTestHost.StartAsync(o => o.ConfigureServices = (s, _) => s.AddSingleton<TimeProvider>(clock));
        var dayKey = await api.CreateKeyAsync("one-day", ApiScope.Read, clock.GetUtcNow().AddDays(1));
        var client = api.Client(dayKey);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("api/changes")).StatusCode);

        await api.RevokeKeyAsync("test-read");
        var revoked = await api.Reader.GetAsync("api/changes");
        var problem = await ApiTestHost.AssertProblemAsync(revoked, 401);
        Assert.Contains("'test-read' was revoked", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);

        clock.Shift = TimeSpan.FromDays(2);
        problem = await ApiTestHost.AssertProblemAsync(await client.GetAsync("api/changes"), 401);
        Assert.Contains("'one-day' expired", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await api.Writer.GetAsync("api/changes")).StatusCode);

        var past = await Assert.ThrowsAsync<ArgumentException>(() => api.CreateKeyAsync("too-late", ApiScope.Read, clock.GetUtcNow().AddMinutes(-1)));
        Assert.Contains("not in the future", past.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_key_revoked_outside_this_process_cache_stops_working_within_the_documented_bound()
    {
        await using var api = await ApiTestHost.StartAsync();
        Assert.Equal(HttpStatusCode.OK, (await api.Reader.GetAsync("api/changes")).StatusCode); // now cached

        // A second key store on the same database stands in for anything that is not this process's cache.
        var elsewhere = new ApiKeyStore(api.GetService<CrmEngine.Core.Storage.CrmDatabase>());
        Assert.NotNull(await elsewhere.RevokeAsync("test-read"));
        await Eventually.TrueAsync(async () => (await api.Reader.GetAsync("api/changes")).StatusCode == HttpStatusCode.Unauthorized,
            "the revoked key is refused", TimeSpan.FromSeconds(60));
        // Not a timing assertion on the machine's speed: the bound itself is what docs/api.md promises.
        Assert.Equal(TimeSpan.FromSeconds(10), ApiKeyStore.CacheBound);
        Assert.Equal(HttpStatusCode.OK, (await api.Writer.GetAsync("api/changes")).StatusCode);
    }

    [Fact]
    public async Task A_refused_request_is_logged_once_and_without_the_key()
    {
        await using var api = await ApiTestHost.StartAsync();
        const string wrong = "crm_this-key-does-not-exist-0123456789";
        await ApiTestHost.AssertProblemAsync(await api.Client(wrong).GetAsync("api/changes"), 401);
        await ApiTestHost.AssertProblemAsync(await api.Anonymous.GetAsync("api/customers"), 401);
        await ApiTestHost.AssertProblemAsync(await api.Reader.PostAsync("api/customers", ApiTestHost.Json("""{"name":"x"}""")), 403);

        var log = api.Log.Split('\n');
        Assert.Single(log, l => l.Contains("refused: unknown API key", StringComparison.Ordinal));
        // ASP.NET's own line for a failed authentication, once per refused request (not once per policy evaluation).
        Assert.Single(log, l => l.Contains("ApiKey was not authenticated", StringComparison.Ordinal) && l.Contains("not valid", StringComparison.Ordinal));
        Assert.DoesNotContain(wrong, api.Log, StringComparison.Ordinal);
        Assert.DoesNotContain(api.ReadKey, api.Log, StringComparison.Ordinal);
    }

    /// <summary>The system clock moved forward by <see cref="Shift"/> (timers stay real).</summary>
    private sealed class ShiftedClock : TimeProvider
    {
        public TimeSpan Shift { get; set; }

        public override DateTimeOffset GetUtcNow() => System.GetUtcNow() + Shift;
    }

    [Fact]
    public async Task Keys_are_stored_only_as_hashes_listed_without_secrets_and_never_logged()
    {
        await using var api = await ApiTestHost.StartAsync(o => o.ConfigureServices = (s, _) => s.AddSingleton<IApiEndpointModule, ProbeModule>());
        Assert.Equal(HttpStatusCode.Created, (await api.Writer.PostAsync("api/probe/customers", ApiTestHost.Json("""{"name":"Logged"}"""))).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await api.Reader.PostAsync("api/probe/customers", ApiTestHost.Json("""{"name":"x"}"""))).StatusCode);
        await api.RevokeKeyAsync("test-admin");
        Assert.Equal(HttpStatusCode.Unauthorized, (await api.Admin.GetAsync("api/changes")).StatusCode);

        var log = api.Log;
        Assert.Contains("HTTP API listening on", log, StringComparison.Ordinal); // the capture works
        foreach (var key in new[] { api.ReadKey, api.WriteKey, api.AdminKey })
        {
            Assert.StartsWith("crm_", key, StringComparison.Ordinal);
            Assert.DoesNotContain(key, log, StringComparison.Ordinal);
            Assert.DoesNotContain(key[4..20], log, StringComparison.Ordinal);
        }

        var listed = api.GetService<ApiKeyAdministration>().List();
        Assert.Equal(["test-read", "test-write", "test-admin"], listed.Select(k => k.Name));
        Assert.Equal([ApiScope.Read, ApiScope.Write, ApiScope.Admin], listed.Select(k => k.Scope));
        Assert.NotNull(listed.Single(k => k.Name == "test-admin").Revoked);
        Assert.All(listed, k => Assert.Null(k.OwnerUserId));

        // The data file holds no key in any form but its SHA-256.
        await api.DisposeAsync();
        var bytes = await ReadAllDataAsync(api.DataDirectory);
        foreach (var key in new[] { api.ReadKey, api.WriteKey, api.AdminKey })
        {
            Assert.DoesNotContain(key[4..], bytes, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_second_live_key_with_the_same_name_is_refused()
    {
        await using var api = await ApiTestHost.StartAsync();
        var admin = api.GetService<ApiKeyAdministration>();
        var error = await Assert.ThrowsAsync<ArgumentException>(() => admin.CreateAsync("TEST-READ", ApiScope.Read, null));
        Assert.Contains("already exists", error.Message, StringComparison.Ordinal);
        await admin.RevokeAsync("test-read");
        var again = await admin.CreateAsync("test-read", ApiScope.Write, null);
        Assert.Equal(ApiScope.Write, again.Info.Scope);
    }

    private static async Task<string> ReadAllDataAsync(string folder)
    {
        if (!Directory.Exists(folder))
        {
            return "";
        }

        var text = new System.Text.StringBuilder();
        foreach (var file in Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories))
        {
            text.Append(System.Text.Encoding.Latin1.GetString(await File.ReadAllBytesAsync(file)));
        }

        return text.ToString();
    }
}

/// <summary>A small endpoint module like the resources one: a write that needs write, a delete that needs admin.</summary>
internal sealed class ProbeModule : IApiEndpointModule
{
    public void Map(IEndpointRouteBuilder api, IEndpointRouteBuilder root)
    {
        api.MapPost("/probe/customers", async (ProbeCustomer body, HttpContext context) =>
        {
            var created = await context.CrmStore().Customers.CreateAsync(new Customer { Name = body.Name, Emails = body.Emails ?? [], Tags = body.Tags ?? [] });
            return TypedResults.Created($"/api/probe/customers/{created.Id}", new ProbeCreated(created.Id, created.Version));
        }).RequireAuthorization(ApiPolicies.Write);

        api.MapPut("/probe/customers/{id}", async (string id, ProbeUpdate body, HttpContext context) =>
        {
            var store = context.CrmStore();
            var current = await store.Customers.GetAsync(id) ?? throw new EntityNotFoundException(EntityNames.Customer, id);
            current.Name = body.Name;
            current.Version = body.Version;
            var updated = await store.Customers.UpdateAsync(current);
            return TypedResults.Ok(new ProbeCreated(updated.Id, updated.Version));
        }).RequireAuthorization(ApiPolicies.Write);

        api.MapDelete("/probe/everything", () => TypedResults.NoContent()).RequireAuthorization(ApiPolicies.Admin);
        api.MapGet("/probe/field-problem", () => ApiProblems.Field(StatusCodes.Status400BadRequest, "email", "is not an e-mail address"))
            .RequireAuthorization(ApiPolicies.Read);
        api.MapPost("/probe/upload", async (HttpContext context) =>
        {
            using var buffer = new MemoryStream();
            await context.Request.Body.CopyToAsync(buffer);
            return TypedResults.Ok(new ProbeUploaded(buffer.Length));
        }).RequireAuthorization(ApiPolicies.Write).WithMaxRequestBodySize(64 * 1024);
        root.MapGet("/probe-public", () => TypedResults.Ok(new ProbeUploaded(0))).AllowAnonymous();
    }
}

internal sealed record ProbeCustomer(string Name, List<string>? Emails, List<string>? Tags);

internal sealed record ProbeUpdate(string Name, long Version);

internal sealed record ProbeCreated(string Id, long Version);

internal sealed record ProbeUploaded(long Bytes);

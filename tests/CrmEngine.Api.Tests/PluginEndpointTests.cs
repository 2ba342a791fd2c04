using System.Net;
using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Plugins;
using CrmEngine.Abstractions.Store;
using CrmEngine.Api.Tests.Support;
using CrmEngine.PluginHost;

namespace CrmEngine.Api.Tests;

/// <summary>Endpoints of a real plugin (Fixture.HttpEndpoint) loaded by the real plugin host, under /api/plugins/fixture.http/.</summary>
public sealed class PluginEndpointTests
{
    private static Task<ApiTestHost> StartAsync(Action<ApiTestHostOptions>? more = null) => ApiTestHost.StartAsync(o =>
    {
        o.Plugins.Add("Fixture.HttpEndpoint");
        o.Settings["PluginHost:CallTimeout"] = "00:00:02";
        more?.Invoke(o);
    });

    [Fact]
    public async Task A_plugin_endpoint_gets_route_values_query_headers_without_credentials_and_the_caller()
    {
        await using var api = await StartAsync();
        Assert.Equal(PluginState.Active, api.GetService<PluginManager>().Find("fixture.http")!.State);

        var response = await api.Reader.GetAsync("api/plugins/fixture.http/echo/42?tag=a&tag=b");
        var json = await ApiTestHost.ReadJsonAsync(response);
        Assert.True(response.StatusCode == HttpStatusCode.OK, json + "\n" + api.Log);
        Assert.Equal("42", json.GetProperty("id").GetString());
        Assert.Equal("/echo/42", json.GetProperty("path").GetString());
        Assert.Equal(["a", "b"], json.GetProperty("query").GetProperty("tag").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal("apikey:test-read", json.GetProperty("actor").GetString());
        var headers = json.GetProperty("headerNames").EnumerateArray().Select(e => e.GetString()!).ToList();
        Assert.Contains("Accept", headers, StringComparer.OrdinalIgnoreCase);
        Assert.DoesNotContain("X-Api-Key", headers, StringComparer.OrdinalIgnoreCase);
        Assert.DoesNotContain(api.ReadKey, await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_plugin_endpoint_checks_and_masks_records_with_the_callers_record_access()
    {
        await using var api = await StartAsync();
        var security = api.GetService<CrmEngine.Security.SecurityAdministration>();
        await security.SeedAsync(CrmEngine.Security.SeedFile.Load(BearerTokenTests.ShippedSeed()), "admin");
        foreach (var user in new[] { "anna", "bob" })
        {
            await security.CreateUserAsync(new CrmEngine.Security.SecurityUser { Id = user, Name = user, BusinessUnit = "sales", Roles = ["salesperson"] }, "admin");
        }

        var keys = api.GetService<CrmEngine.Api.Keys.ApiKeyAdministration>();
        var anna = api.Client((await keys.CreateAsync("key-anna", CrmEngine.Abstractions.Http.ApiScope.Read, null, "anna")).Key);
        var admin = api.Client((await keys.CreateAsync("key-admin", CrmEngine.Abstractions.Http.ApiScope.Read, null, "admin")).Key);

        // Anna (salesperson, own depth) reads her own record without the overdue amount, which her role may not read.
        var own = await ApiTestHost.ReadJsonAsync(await anna.GetAsync("api/plugins/fixture.http/access/anna"));
        Assert.Equal("anna", own.GetProperty("owner").GetString());
        Assert.False(own.TryGetProperty("overdueAmount", out _), own.ToString());

        // Bob's record is refused to her, naming the missing privilege; the administrator reads it whole.
        using var refused = await anna.GetAsync("api/plugins/fixture.http/access/bob");
        var problem = await refused.Content.ReadAsStringAsync();
        Assert.True(refused.StatusCode == HttpStatusCode.NotFound, problem);
        Assert.Contains("customer:read", problem, StringComparison.Ordinal);
        var whole = await ApiTestHost.ReadJsonAsync(await admin.GetAsync("api/plugins/fixture.http/access/bob"));
        Assert.Equal(12.5, whole.GetProperty("overdueAmount").GetDouble());
    }

    [Fact]
    public async Task Plugin_endpoints_have_the_same_authentication_and_their_declared_scope()
    {
        await using var api = await StartAsync();
        await ApiTestHost.AssertProblemAsync(await api.Anonymous.GetAsync("api/plugins/fixture.http/echo/1"), 401);

        var forbidden = await api.Reader.PostAsync("api/plugins/fixture.http/notes", ApiTestHost.Json("""{"text":"Denied"}"""));
        var problem = await ApiTestHost.AssertProblemAsync(forbidden, 403);
        Assert.Equal("write", problem.GetProperty("requiredScope").GetString());
        Assert.Empty(await api.Store().Customers.FindAsync(IndexedField.Name, "Denied"));

        var created = await api.Writer.PostAsync("api/plugins/fixture.http/notes", ApiTestHost.Json("""{"text":"From plugin"}"""));
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var id = (await ApiTestHost.ReadJsonAsync(created)).GetProperty("id").GetString()!;
        var customer = (await api.Store().Customers.GetAsync(id))!;
        Assert.Contains("from:apikey:test-write", customer.Tags);
        Assert.Equal("plugin:fixture.http", Assert.Single(await api.Store().Audit.ForEntityAsync(EntityNames.Customer, id)).Actor);

        await ApiTestHost.AssertProblemAsync(await api.Writer.DeleteAsync("api/plugins/fixture.http/admin/7"), 403);
        Assert.Equal(HttpStatusCode.OK, (await api.Admin.DeleteAsync("api/plugins/fixture.http/admin/7")).StatusCode);

        // The plugin's own problem answer comes through as it is.
        var bad = await api.Writer.PostAsync("api/plugins/fixture.http/notes", ApiTestHost.Json("""{"text":""}"""));
        Assert.Equal("text", (await ApiTestHost.AssertProblemAsync(bad, 400)).GetProperty("field").GetString());

        await ApiTestHost.AssertProblemAsync(await api.Reader.GetAsync("api/plugins/fixture.http/nothing-here"), 404);
        var unknown = await ApiTestHost.AssertProblemAsync(await api.Reader.GetAsync("api/plugins/no.such.plugin/x"), 404);
        Assert.Contains("no.such.plugin", unknown.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_throwing_or_hanging_endpoint_answers_500_counts_as_a_fault_and_a_malfunctioned_plugin_answers_503()
    {
        await using var api = await StartAsync(o => o.Settings["PluginHost:FailureThreshold"] = "3");
        var boom = await ApiTestHost.AssertProblemAsync(await api.Reader.GetAsync("api/plugins/fixture.http/boom"), 500);
        Assert.Contains("the fixture endpoint always fails", boom.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(1, api.GetService<PluginFaultBreaker>().FailureCount("fixture.http"));

        var slow = await ApiTestHost.AssertProblemAsync(await api.Reader.GetAsync("api/plugins/fixture.http/slow"), 500);
        Assert.Contains("did not finish within 2 s", slow.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(2, api.GetService<PluginFaultBreaker>().FailureCount("fixture.http"));

        await ApiTestHost.AssertProblemAsync(await api.Reader.GetAsync("api/plugins/fixture.http/boom"), 500);
        await Eventually.TrueAsync(() => api.GetService<PluginManager>().Find("fixture.http")!.State == PluginState.Malfunctioned,
            "the breaker marked the plugin Malfunctioned");

        var unavailable = await ApiTestHost.AssertProblemAsync(await api.Reader.GetAsync("api/plugins/fixture.http/echo/1"), 503);
        Assert.Equal("fixture.http", unavailable.GetProperty("plugin").GetString());
        Assert.Equal("Malfunctioned", unavailable.GetProperty("state").GetString());
        Assert.Contains("plugin fixture.http is Malfunctioned", unavailable.GetProperty("detail").GetString(), StringComparison.Ordinal);
        // A path the plugin never declared says the same once the plugin is down.
        await ApiTestHost.AssertProblemAsync(await api.Reader.GetAsync("api/plugins/fixture.http/other"), 503);

        // The rest of the API goes on.
        Assert.Equal(HttpStatusCode.OK, (await api.Reader.GetAsync("api/changes")).StatusCode);
        var health = await ApiTestHost.ReadJsonAsync(await api.Anonymous.GetAsync("health"));
        Assert.Equal("degraded", health.GetProperty("status").GetString());
        Assert.Equal(1, health.GetProperty("checks").GetProperty("plugins").GetProperty("details").GetProperty("malfunctioned").GetInt32());
    }

    [Fact]
    public async Task A_plugin_that_became_active_after_the_api_started_is_served_and_a_wrong_method_gets_405()
    {
        await using var api = await StartAsync(o => o.ApiBeforePlugins = true);
        Assert.Equal(PluginState.Active, api.GetService<PluginManager>().Find("fixture.http")!.State);
        // The API logged no plugin endpoints at its start: none were known then.
        Assert.DoesNotContain("API: plugin endpoint", api.Log, StringComparison.Ordinal);

        var response = await api.Reader.GetAsync("api/plugins/fixture.http/echo/7");
        var json = await ApiTestHost.ReadJsonAsync(response);
        Assert.True(response.StatusCode == HttpStatusCode.OK, json.ToString());
        Assert.Equal("7", json.GetProperty("id").GetString());

        // The declared scope still holds for a plugin activated later.
        await ApiTestHost.AssertProblemAsync(await api.Reader.PostAsync("api/plugins/fixture.http/notes", ApiTestHost.Json("""{"text":"x"}""")), 403);
        var wrong = await api.Reader.PutAsync("api/plugins/fixture.http/echo/7", ApiTestHost.Json("{}"));
        await ApiTestHost.AssertProblemAsync(wrong, 405);
        Assert.Contains("GET", wrong.Content.Headers.Allow);

        // And the OpenAPI document lists it now.
        var doc = await ApiTestHost.ReadJsonAsync(await api.Anonymous.GetAsync("openapi/v1.json"));
        Assert.True(doc.GetProperty("paths").TryGetProperty("/api/plugins/fixture.http/echo/{id}", out _));
    }
}

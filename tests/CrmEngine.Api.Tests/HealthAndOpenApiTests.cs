using System.Net;
using System.Text.Json;
using CrmEngine.Abstractions.Model;
using CrmEngine.Api.Tests.Support;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace CrmEngine.Api.Tests;

public sealed class HealthAndOpenApiTests
{
    [Fact]
    public async Task Health_needs_no_key_shows_counts_only_and_includes_registered_contributors()
    {
        await using var api = await ApiTestHost.StartAsync(o => o.ConfigureServices = (s, _) =>
            s.AddSingleton<IHealthContributor>(new FixedHealth("outbox", "degraded")));
        var secret = await api.Store().Customers.CreateAsync(new Customer { Name = "Very Secret Customer", Emails = ["secret@example.com"] });

        var response = await api.Anonymous.GetAsync("health");
        var text = await response.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var json = JsonDocument.Parse(text).RootElement;
        Assert.Equal("degraded", json.GetProperty("status").GetString());
        var checks = json.GetProperty("checks");
        Assert.Equal("ok", checks.GetProperty("store").GetProperty("status").GetString());
        Assert.Equal(1, checks.GetProperty("store").GetProperty("details").GetProperty("lastSequence").GetInt64());
        Assert.Equal(0, checks.GetProperty("plugins").GetProperty("details").GetProperty("total").GetInt32());
        Assert.True(checks.GetProperty("scheduler").GetProperty("details").GetProperty("enabled").GetBoolean());
        Assert.Equal("degraded", checks.GetProperty("outbox").GetProperty("status").GetString());
        Assert.DoesNotContain("Secret", text, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(secret.Id, text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Health_is_503_when_a_part_is_down_or_does_not_answer()
    {
        await using var api = await ApiTestHost.StartAsync(o => o.ConfigureServices = (s, _) =>
        {
            s.AddSingleton<IHealthContributor>(new FixedHealth("webhooks", "down"));
            s.AddSingleton<IHealthContributor>(new ThrowingHealth());
        });
        var response = await api.Anonymous.GetAsync("health");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        var json = await ApiTestHost.ReadJsonAsync(response);
        Assert.Equal("down", json.GetProperty("status").GetString());
        Assert.Equal("down", json.GetProperty("checks").GetProperty("broken").GetProperty("status").GetString());
        Assert.Contains("probe failed", json.GetProperty("checks").GetProperty("broken").GetProperty("details").GetProperty("error").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_OpenAPI_document_needs_no_key_and_lists_every_endpoint_of_the_app_with_the_api_key_scheme()
    {
        await using var api = await ApiTestHost.StartAsync(o =>
        {
            o.Plugins.Add("Fixture.HttpEndpoint");
            o.ConfigureServices = (s, _) => s.AddSingleton<IApiEndpointModule, ProbeModule>();
        });
        var response = await api.Anonymous.GetAsync("openapi/v1.json");
        var text = await response.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var doc = JsonDocument.Parse(text).RootElement;
        var scheme = doc.GetProperty("components").GetProperty("securitySchemes").GetProperty("ApiKey");
        Assert.Equal("apiKey", scheme.GetProperty("type").GetString());
        Assert.Equal("X-Api-Key", scheme.GetProperty("name").GetString());
        Assert.Equal("header", scheme.GetProperty("in").GetString());

        var paths = doc.GetProperty("paths");
        var documented = paths.EnumerateObject()
            .SelectMany(p => p.Value.EnumerateObject().Select(m => (Path: Normalize(p.Name), Method: m.Name.ToUpperInvariant())))
            .ToHashSet();

        // Every endpoint the application serves, except the document itself, must be in it.
        var endpoints = api.ApiServices.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Where(e => !e.RoutePattern.RawText!.StartsWith("/openapi/", StringComparison.Ordinal))
            .ToList();
        Assert.Contains(endpoints, e => e.RoutePattern.RawText == "/api/changes");
        // Plugin endpoints are dispatched per request; the document lists each one declared now under its full path.
        Assert.True(paths.TryGetProperty("/api/plugins/fixture.http/echo/{id}", out var echo), "the plugin's echo endpoint is documented");
        Assert.True(echo.GetProperty("get").GetProperty("security").GetArrayLength() > 0);
        Assert.Contains("write", paths.GetProperty("/api/plugins/fixture.http/notes").GetProperty("post").GetProperty("description").GetString(), StringComparison.Ordinal);
        var missing = new List<string>();
        foreach (var endpoint in endpoints)
        {
            var methods = endpoint.Metadata.GetMetadata<IHttpMethodMetadata>()?.HttpMethods ?? [];
            var path = Normalize("/" + endpoint.RoutePattern.RawText!.TrimStart('/'));
            foreach (var method in methods.Count == 0 ? ["GET"] : methods)
            {
                if (!documented.Contains((path, method)))
                {
                    missing.Add($"{method} {path}");
                }
            }
        }

        Assert.True(missing.Count == 0, "not in /openapi/v1.json: " + string.Join(", ", missing));

        // Schemas: the change feed's page and the health answer are described, and secured operations name the scheme.
        var changes = paths.GetProperty("/api/changes").GetProperty("get");
        Assert.True(changes.GetProperty("security").GetArrayLength() > 0);
        Assert.True(changes.GetProperty("responses").GetProperty("200").GetProperty("content").GetProperty("application/json").TryGetProperty("schema", out _));
        Assert.True(doc.GetProperty("components").GetProperty("schemas").TryGetProperty("ChangesPage", out _));
        Assert.True(doc.GetProperty("components").GetProperty("schemas").TryGetProperty("ProbeCustomer", out _));
        Assert.False(paths.GetProperty("/health").GetProperty("get").TryGetProperty("security", out _));
    }

    /// <summary>Route parameters compared by position only: <c>{id}</c>, <c>{id:int}</c> and <c>{**path}</c> all read <c>{}</c>.</summary>
    private static string Normalize(string path) =>
        System.Text.RegularExpressions.Regex.Replace(path, "\\{[^}]*\\}", "{}").TrimEnd('/');

    private sealed class FixedHealth(string name, string status) : IHealthContributor
    {
        public string Name => name;

        public Task<HealthReport> CheckAsync(CancellationToken cancellationToken) =>
            Task.FromResult(new HealthReport(status, new Dictionary<string, object?> { ["pending"] = 3 }));
    }

    private sealed class ThrowingHealth : IHealthContributor
    {
        public string Name => "broken";

        public Task<HealthReport> CheckAsync(CancellationToken cancellationToken) => throw new InvalidOperationException("probe failed");
    }
}

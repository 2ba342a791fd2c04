using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using CrmEngine.Abstractions.Store;
using CrmEngine.Api.Resources;
using CrmEngine.Api.Tests.Support;
using CrmEngine.Rules;
using Microsoft.Extensions.DependencyInjection;

namespace CrmEngine.Api.Tests.Resources;

[CollectionDefinition(Name)]
public sealed class ResourceApiCollection : ICollectionFixture<ResourceApiFixture>
{
    public const string Name = "resource api";
}

/// <summary>
/// One engine with the HTTP API, the resource endpoints, the rules engine (a segment script in its own
/// rules folder) and customer redirects, shared by the resource tests. Tests make their own data with
/// unique names so they do not depend on each other.
/// </summary>
public sealed class ResourceApiFixture : IAsyncLifetime
{
    public const string VipSegment = "api-vip";

    public ApiTestHost Host { get; private set; } = null!;

    public FakeRedirects Redirects { get; } = new();

    public string RulesDirectory { get; } = Path.Combine(Path.GetTempPath(), "crm-api-resource-rules", Guid.NewGuid().ToString("N"));

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(Path.Combine(RulesDirectory, "segments"));
        await File.WriteAllTextAsync(Path.Combine(RulesDirectory, "segments", VipSegment + ".js"),
            "// @description Customers tagged api-vip.\nreturn customer.tags.includes('api-vip');\n");
        Host = await StartAsync(RulesDirectory, Redirects);
    }

    /// <summary>An engine with the API, its resources, the rules engine reading <paramref name="rulesDirectory"/> and these redirects.</summary>
    internal static Task<ApiTestHost> StartAsync(string rulesDirectory, ICustomerRedirects redirects) =>
        ApiTestHost.StartAsync(o =>
        {
            o.Settings["Rules:Directory"] = rulesDirectory;
            o.Settings["Rules:ChangePollInterval"] = "00:00:00.050";
            o.ConfigureServices = (services, configuration) =>
            {
                services.AddCrmRules(configuration);
                services.AddCrmApiResources();
                services.AddSingleton(redirects);
            };
        });

    /// <summary>Stops the engine and removes its rules folder.</summary>
    internal static async Task StopAsync(ApiTestHost host, string rulesDirectory)
    {
        await host.DisposeAsync();
        try
        {
            Directory.Delete(rulesDirectory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    public Task DisposeAsync() => StopAsync(Host, RulesDirectory);

    /// <summary>A client with the key that does not follow redirects (to see 308s).</summary>
    public HttpClient NoRedirectClient(string apiKey) => NoRedirectClient(Host, apiKey);

    internal static HttpClient NoRedirectClient(ApiTestHost host, string apiKey)
    {
        var client = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = host.BaseAddress };
        client.DefaultRequestHeaders.Add("X-Api-Key", apiKey);
        return client;
    }

    /// <summary>Merged-away ids, as the data exchange would register them.</summary>
    public sealed class FakeRedirects : ICustomerRedirects
    {
        public ConcurrentDictionary<string, string> Map { get; } = new(StringComparer.Ordinal);

        public Task<string?> ResolveAsync(string customerId, CancellationToken cancellationToken = default) =>
            Task.FromResult(Map.TryGetValue(customerId, out var kept) ? kept : null);
    }
}

/// <summary>Small request helpers for the resource tests.</summary>
internal static class Api
{
    public static async Task<HttpResponseMessage> SendAsync(HttpClient client, HttpMethod method, string url, string? json = null,
        string? ifMatch = null, string contentType = "application/json", string? ifNoneMatch = null)
    {
        using var request = new HttpRequestMessage(method, url);
        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8);
            request.Content.Headers.ContentType = new MediaTypeHeaderValue(contentType) { CharSet = "utf-8" };
        }

        if (ifMatch is not null)
        {
            request.Headers.TryAddWithoutValidation("If-Match", ifMatch);
        }

        if (ifNoneMatch is not null)
        {
            request.Headers.TryAddWithoutValidation("If-None-Match", ifNoneMatch);
        }

        return await client.SendAsync(request);
    }

    public static Task<HttpResponseMessage> PostAsync(HttpClient client, string url, string json) => SendAsync(client, HttpMethod.Post, url, json);

    /// <summary>Creates a customer over HTTP and returns its JSON (asserting 201).</summary>
    public static async Task<JsonElement> CreateCustomerAsync(HttpClient client, string json)
    {
        using var response = await PostAsync(client, "/api/customers", json);
        var body = await ApiTestHost.ReadJsonAsync(response);
        Assert.True(response.StatusCode == HttpStatusCode.Created, $"{(int)response.StatusCode}: {body}");
        return body;
    }

    public static async Task<JsonElement> OkJsonAsync(HttpResponseMessage response, HttpStatusCode expected = HttpStatusCode.OK)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == expected, $"expected {(int)expected}, got {(int)response.StatusCode}: {body}");
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    public static string Id(this JsonElement element) => element.GetProperty("id").GetString()!;

    public static string Str(this JsonElement element, string name) => element.GetProperty(name).GetString()!;

    public static string ETag(this HttpResponseMessage response) => response.Headers.ETag?.ToString() ?? "";

    /// <summary>The names in a problem's <c>errors</c> list.</summary>
    public static List<string> ErrorFields(JsonElement problem) =>
        problem.TryGetProperty("errors", out var errors) ? errors.EnumerateArray().Select(e => e.GetProperty("field").GetString()!).ToList() : [];

    /// <summary>
    /// Change-feed records written by API callers after <paramref name="sequence"/>. (The rules engine writes
    /// its own bookkeeping to the feed in the background, so "no change at all" would not be a fair check.)
    /// </summary>
    public static async Task<List<ChangeRecord>> ApiChangesSinceAsync(ApiTestHost host, long sequence)
    {
        var changes = await host.Store().Changes.ReadAsync(sequence, 10_000);
        return changes.Where(c => c.Actor.StartsWith("apikey:", StringComparison.Ordinal)).ToList();
    }

    public static string Unique(string prefix) => prefix + "-" + Guid.NewGuid().ToString("N")[..10];
}

using System.Net;
using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Pipeline;
using CrmEngine.Abstractions.Store;
using CrmEngine.Api.Tests.Support;
using CrmEngine.Core.Pipeline;
using Microsoft.Extensions.DependencyInjection;

namespace CrmEngine.Api.Tests;

/// <summary>Problem details for every kind of error; bad input is refused whole.</summary>
public sealed class ErrorTests
{
    private static Task<ApiTestHost> StartAsync(Action<ApiTestHostOptions>? more = null) => ApiTestHost.StartAsync(o =>
    {
        o.ConfigureServices = (s, _) => s.AddSingleton<IApiEndpointModule, ProbeModule>();
        more?.Invoke(o);
    });

    [Fact]
    public async Task Unknown_fields_wrong_types_and_malformed_JSON_get_400_naming_the_field_and_nothing_is_stored()
    {
        await using var api = await StartAsync();
        var before = await api.Store().Changes.LastSequenceAsync();

        var unknown = await api.Writer.PostAsync("api/probe/customers", ApiTestHost.Json("""{"name":"Acme","emial":"x@example.com"}"""));
        var problem = await ApiTestHost.AssertProblemAsync(unknown, 400);
        Assert.Equal("emial", problem.GetProperty("field").GetString());
        Assert.Contains("unknown field 'emial'", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);

        var wrongType = await api.Writer.PostAsync("api/probe/customers", ApiTestHost.Json("""{"name":"Acme","tags":"vip"}"""));
        problem = await ApiTestHost.AssertProblemAsync(wrongType, 400);
        Assert.Equal("tags", problem.GetProperty("field").GetString());
        Assert.Contains("wrong type", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);

        var numberAsString = await api.Writer.PutAsync("api/probe/customers/x", ApiTestHost.Json("""{"name":"Acme","version":"3"}"""));
        problem = await ApiTestHost.AssertProblemAsync(numberAsString, 400);
        Assert.Equal("version", problem.GetProperty("field").GetString());

        var malformed = await api.Writer.PostAsync("api/probe/customers", ApiTestHost.Json("""{"name":"Acme",""" ));
        await ApiTestHost.AssertProblemAsync(malformed, 400);

        Assert.Equal(before, await api.Store().Changes.LastSequenceAsync());
        Assert.Empty(await api.Store().Customers.FindAsync(IndexedField.Name, "Acme"));
    }

    [Fact]
    public async Task Store_errors_become_problems_validation_422_with_every_field_conflict_412_missing_404()
    {
        await using var api = await StartAsync();
        var invalid = await api.Writer.PostAsync("api/probe/customers", ApiTestHost.Json("""{"name":"","emails":["not-an-email"]}"""));
        var problem = await ApiTestHost.AssertProblemAsync(invalid, 422);
        var fields = problem.GetProperty("errors").EnumerateArray().Select(e => e.GetProperty("field").GetString()).ToList();
        // Named as in JSON, and the same answer the resource endpoint gives for the same refusal: one mapping.
        Assert.Contains("name", fields);
        Assert.Contains("emails[0]", fields);
        var viaResource = await ApiTestHost.AssertProblemAsync(
            await api.Writer.PostAsync("api/customers", ApiTestHost.Json("""{"name":"","emails":["not-an-email"]}""")), 422);
        Assert.Equal(viaResource.GetProperty("title").GetString(), problem.GetProperty("title").GetString());
        Assert.Equal(viaResource.GetProperty("errors").EnumerateArray().Select(e => e.GetProperty("field").GetString()), fields);

        var created = await api.Store().Customers.CreateAsync(new Customer { Name = "Versioned" });
        await api.Store().Customers.UpdateAsync(new Customer { Id = created.Id, Name = "Changed", Version = created.Version });
        var stale = await api.Writer.PutAsync($"api/probe/customers/{created.Id}", ApiTestHost.Json($$"""{"name":"Stale","version":{{created.Version}}}"""));
        problem = await ApiTestHost.AssertProblemAsync(stale, 412);
        Assert.Equal(created.Version + 1, problem.GetProperty("currentVersion").GetInt64());
        Assert.Equal("Version conflict", problem.GetProperty("title").GetString());
        Assert.Equal("If-Match", problem.GetProperty("field").GetString());
        Assert.Equal("Changed", (await api.Store().Customers.GetAsync(created.Id))!.Name);

        var missing = await api.Writer.PutAsync("api/probe/customers/no-such-id", ApiTestHost.Json("""{"name":"Ghost","version":1}"""));
        problem = await ApiTestHost.AssertProblemAsync(missing, 404);
        Assert.Contains("no-such-id", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);

        var field = await api.Reader.GetAsync("api/probe/field-problem");
        problem = await ApiTestHost.AssertProblemAsync(field, 400);
        Assert.Equal("email", problem.GetProperty("field").GetString());

        var noRoute = await api.Reader.GetAsync("api/no-such-endpoint");
        await ApiTestHost.AssertProblemAsync(noRoute, 404);
    }

    [Fact]
    public async Task A_write_loop_through_handlers_answers_409_naming_the_chain()
    {
        await using var api = await StartAsync(o => o.Settings["Pipeline:MaxDepth"] = "3");
        // A handler that updates the customer it sees, forever: the depth guard stops it.
        api.GetService<IWriteHandlerRegistry>().Register(HandlerRegistration.Create<Customer>("test", EntityNames.Customer, PipelineStage.PostOperation, 0, "test:loop",
            new LoopHandler(api.Store("test:loop")).HandleAsync));
        var response = await api.Writer.PostAsync("api/probe/customers", ApiTestHost.Json("""{"name":"Loop"}"""));
        var problem = await ApiTestHost.AssertProblemAsync(response, 409);
        Assert.Contains("depth limit of 3", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.True(problem.GetProperty("chain").GetArrayLength() > 3);
        Assert.Empty(await api.Store().Customers.FindAsync(IndexedField.Name, "Loop"));
    }

    [Fact]
    public async Task A_body_over_the_limit_gets_413_and_an_endpoint_can_raise_its_own_limit()
    {
        await using var api = await StartAsync(o => o.Settings["Api:MaxRequestBodyBytes"] = "2048");
        var big = new string('x', 10_000);
        var refused = await api.Writer.PostAsync("api/probe/customers", ApiTestHost.Json($$"""{"name":"{{big}}"}"""));
        var problem = await ApiTestHost.AssertProblemAsync(refused, 413);
        Assert.True(problem.TryGetProperty("detail", out _), problem.ToString());
        Assert.Contains("2048", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Empty(await api.Store().Changes.ReadAsync(0));

        // The upload endpoint declares 64 KiB.
        var upload = await api.Writer.PostAsync("api/probe/upload", new ByteArrayContent(new byte[30_000]));
        Assert.Equal(HttpStatusCode.OK, upload.StatusCode);
        Assert.Equal(30_000, (await ApiTestHost.ReadJsonAsync(upload)).GetProperty("bytes").GetInt64());
        var tooBig = await api.Writer.PostAsync("api/probe/upload", new ByteArrayContent(new byte[100_000]));
        await ApiTestHost.AssertProblemAsync(tooBig, 413);
    }

    private sealed class LoopHandler(ICrmStore store) : IWriteHandler<Customer>
    {
        public async Task HandleAsync(WriteEvent<Customer> writeEvent, CancellationToken cancellationToken)
        {
            var after = writeEvent.After!;
            after.Name += "+";
            await store.Customers.UpdateAsync(after, cancellationToken);
        }
    }
}

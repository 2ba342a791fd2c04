using CrmEngine.Api.Security;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.OpenApi;

namespace CrmEngine.Api.Hosting;

/// <summary>The OpenAPI document at <c>/openapi/v1.json</c> (no key): every endpoint, its schemas, and the API key scheme.</summary>
internal static class ApiOpenApi
{
    public const string DocumentPath = "/openapi/{documentName}.json";

    public static void Add(IServiceCollection services)
    {
        services.AddOpenApi("v1", options =>
        {
            options.AddDocumentTransformer((document, _, _) =>
            {
                document.Info = new OpenApiInfo
                {
                    Title = "CrmEngine API",
                    Version = "v1",
                    Description = "Send an API key in the X-Api-Key header (or Authorization: ApiKey <key>). Keys are made with `crm apikeys create`. " +
                                  "Errors are RFC 7807 problem details. See docs/api.md.",
                };
                document.Components ??= new OpenApiComponents();
                document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
                document.Components.SecuritySchemes[ApiKeyAuthenticationHandler.SchemeName] = new OpenApiSecurityScheme
                {
                    Type = SecuritySchemeType.ApiKey,
                    In = ParameterLocation.Header,
                    Name = ApiKeyAuthenticationHandler.HeaderName,
                    Description = "An API key with the read, write or admin scope (admin includes write, write includes read).",
                };
                return Task.CompletedTask;
            });
            options.AddOperationTransformer((operation, context, _) =>
            {
                var metadata = context.Description.ActionDescriptor.EndpointMetadata;
                if (metadata.OfType<IAllowAnonymous>().Any() || !metadata.OfType<IAuthorizeData>().Any())
                {
                    return Task.CompletedTask;
                }

                var scope = metadata.OfType<IAuthorizeData>().Select(a => a.Policy).Select(ScopeOf).Max();
                operation.Security ??= [];
                operation.Security.Add(new OpenApiSecurityRequirement
                {
                    [new OpenApiSecuritySchemeReference(ApiKeyAuthenticationHandler.SchemeName, context.Document)] = [],
                });
                operation.Description = ((operation.Description ?? "") + $"\n\nNeeds an API key with the **{scope}** scope.").Trim();
                operation.Responses ??= new OpenApiResponses();
                operation.Responses.TryAdd("401", new OpenApiResponse { Description = "No, unknown, revoked or expired API key (problem details)" });
                operation.Responses.TryAdd("403", new OpenApiResponse { Description = $"The key lacks the {scope} scope (problem details)" });
                return Task.CompletedTask;
            });
        });
    }

    public static void Map(WebApplication app) => app.MapOpenApi(DocumentPath).AllowAnonymous();

    private static string ScopeOf(string? policy) => policy switch
    {
        ApiPolicies.Admin => "admin",
        ApiPolicies.Write => "write",
        _ => "read",
    };
}

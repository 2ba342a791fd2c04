using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http.Metadata;

namespace CrmEngine.Api;

/// <summary>Endpoint conventions for the API's endpoint code.</summary>
public static class ApiEndpointConventions
{
    /// <summary>
    /// Lets this endpoint take a larger (or smaller) body than <c>Api:MaxRequestBodyBytes</c>, for example a CSV import:
    /// <c>api.MapPost("import/customers", ...).WithMaxRequestBodySize(512L * 1024 * 1024)</c>. Null removes the limit.
    /// </summary>
    public static TBuilder WithMaxRequestBodySize<TBuilder>(this TBuilder builder, long? bytes) where TBuilder : IEndpointConventionBuilder
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Add(e => e.Metadata.Add(new BodySizeLimit(bytes)));
        return builder;
    }

    private sealed class BodySizeLimit(long? bytes) : IRequestSizeLimitMetadata
    {
        public long? MaxRequestBodySize { get; } = bytes;
    }
}
